"""The ledger's unique-insert guarantees on the real database (FerretDB here):
racing claims never exceed a limit, a released unit is reused, a command finds
what it holds, stale or lost hints only cost retries, reply slots count each
command once, and the first frozen tier and the first charge win."""

import asyncio
from datetime import UTC, datetime

import pytest
from pymongo import AsyncMongoClient

from im_contracts import ChargeSource, utcnow
from services.quota.app import DEFAULT_POLICY_PATH, load_policy
from services.quota.domain import Allowance
from services.quota.store import Party, QuotaStore
from tests.harness import Suite, unique

pytestmark = pytest.mark.integration

POLICY = load_policy(DEFAULT_POLICY_PATH)
T0, T1, T2, _ = POLICY.tiers
WEEK = POLICY.week_of(datetime(2032, 3, 3, tzinfo=UTC))


@pytest.fixture
async def stores(suite: Suite) -> list[QuotaStore]:
    """Two stores on separate connections to quota's database, like two instances."""
    runtime = suite.runtimes["quota"]
    other = AsyncMongoClient(runtime.settings.mongodb_uri, tz_aware=True)
    yield [QuotaStore(runtime.db), QuotaStore(other[runtime.settings.database_name])]
    await other.close()


async def test_racing_claims_take_exactly_the_limit_and_released_units_are_reused(stores: list[QuotaStore]) -> None:
    seller = unique("s")
    allowance = Allowance(ChargeSource.WEEKLY, WEEK.key, 10)
    parties = [Party(seller, f"c{i}", unique("cmd")) for i in range(30)]
    claims = await asyncio.gather(*(stores[i % 2].claim(p, allowance, T1) for i, p in enumerate(parties)))
    taken = [c for c in claims if c is not None]
    assert sorted(c.used for c in taken) == list(range(1, 11))

    released = next(c for c in taken if c.used == 4)
    await stores[0].release(released)
    late = await stores[1].claim(Party(seller, "late", unique("cmd")), allowance, T1)
    assert late is not None and late.used == 4 and late.slot_id == released.slot_id
    assert await stores[0].claim(Party(seller, "later", unique("cmd")), allowance, T1) is None

    held = await stores[1].claim_held_by(late.command_id)
    assert held == late


async def test_unlimited_allowances_number_their_claims(stores: list[QuotaStore]) -> None:
    seller = unique("s")
    allowance = Allowance(ChargeSource.WEEKLY, WEEK.key, None)
    claims = await asyncio.gather(*(stores[i % 2].claim(Party(seller, f"c{i}", unique("cmd")), allowance, T2) for i in range(12)))
    assert sorted(c.used for c in claims) == list(range(1, 13))


async def test_first_frozen_tier_and_first_charge_win(stores: list[QuotaStore]) -> None:
    seller, creator = unique("s"), unique("c")
    frozen = await asyncio.gather(
        stores[0].freeze_week_tier(seller, WEEK.key, T1, "a"), stores[1].freeze_week_tier(seller, WEEK.key, T2, "b")
    )
    assert frozen[0] == frozen[1] and await stores[0].week_tier(seller, WEEK.key) == frozen[0]

    allowance = Allowance(ChargeSource.WEEKLY, WEEK.key, 50)
    first, second = Party(seller, creator, unique("cmd")), Party(seller, creator, unique("cmd"))
    claims = [await stores[0].claim(first, allowance, T1), await stores[1].claim(second, allowance, T1)]
    charges = await asyncio.gather(
        stores[0].record_charge(first, claims[0], WEEK), stores[1].record_charge(second, claims[1], WEEK)
    )
    assert charges[0] == charges[1]
    assert await stores[0].charge_for(seller, WEEK.key, creator) == charges[0]
    assert await stores[1].charge_for(seller, WEEK.key, creator) == charges[0]


async def test_claims_walk_up_from_a_stale_hint_and_a_lost_one(stores: list[QuotaStore]) -> None:
    seller = unique("s")
    allowance = Allowance(ChargeSource.WEEKLY, WEEK.key, 10)
    first = [await stores[0].claim(Party(seller, f"c{i}", unique("cmd")), allowance, T1) for i in range(3)]
    assert [c.used for c in first] == [1, 2, 3]
    await stores[0].claim_heads.update_one({"_id": f"{seller}:{WEEK.key}"}, {"$set": {"unit": 0}})  # a lost $max
    assert (await stores[1].claim(Party(seller, "c3", unique("cmd")), allowance, T1)).used == 4
    await stores[0].claim_heads.delete_one({"_id": f"{seller}:{WEEK.key}"})  # no hint at all (claims from before hints)
    assert (await stores[1].claim(Party(seller, "c4", unique("cmd")), allowance, T1)).used == 5
    assert (await stores[0].claim_heads.find_one({"_id": f"{seller}:{WEEK.key}"}))["unit"] == 4
    assert await stores[0].claims_used(seller, WEEK.key) == 5


async def test_a_claim_is_looked_for_only_behind_its_mark(stores: list[QuotaStore]) -> None:
    seller, creator = unique("s"), unique("c")
    allowance = Allowance(ChargeSource.WEEKLY, WEEK.key, 10)
    never, marked_only = unique("cmd"), unique("cmd")
    assert await stores[0].claim_held_by(never) is None
    await stores[0].claim_attempts.insert_one({"_id": marked_only, "seller_id": seller})  # a crash before the claim
    assert await stores[0].claim_held_by(marked_only) is None
    claim = await stores[1].claim(Party(seller, creator, marked_only), allowance, T1)  # the redelivery claims once
    assert await stores[0].claim_held_by(marked_only) == claim
    assert await stores[0].claims_used(seller, WEEK.key) == 1


async def test_reply_slots_count_each_command_once_and_saturate(stores: list[QuotaStore]) -> None:
    conversation, slots = f"{unique('s')}:{unique('c')}", 6  # reply cap 5
    commands = [unique("cmd") for _ in range(8)]

    async def record(store: QuotaStore, command: str) -> None:
        await store.record_seller_message(conversation, command, utcnow(), await store.reply_slots_held(conversation, slots))

    await asyncio.gather(*(record(stores[i % 2], c) for i, c in enumerate(commands[:3] * 2)))  # each delivered twice, racing
    seen = await stores[0].reply_slots_held(conversation, slots)
    assert sorted(h for h in seen.holders if h) == sorted(commands[:3]) and seen.first_free() == 4
    assert (seen.count(), seen.count(commands[0]), seen.count("someone-else")) == (3, 2, 3)
    await asyncio.gather(*(record(stores[i % 2], c) for i, c in enumerate(commands)))
    full = await stores[1].reply_slots_held(conversation, slots)
    assert full.first_free() is None and len(set(full.holders)) == slots
    assert {full.count(c) for c in commands} == {5}
