"""The ledger's guarantees on the real database: racing sends never take more units
than the limit, a unit given back is reused, a command finds the unit it holds,
the reply count counts each command once, and the first frozen tier and the
first charge win."""

import asyncio
from datetime import UTC, datetime

import pytest
from pymongo import AsyncMongoClient

from im_contracts import ChargeSource
from services.quota.app import DEFAULT_POLICY_PATH, load_policy
from services.quota.domain import Allowance, Claim, Units
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


async def test_racing_sends_take_exactly_the_limit_and_units_given_back_are_reused(stores: list[QuotaStore]) -> None:
    seller = unique("s")
    allowance = Allowance(ChargeSource.WEEKLY, WEEK.key, 10)
    commands = [unique("cmd") for _ in range(30)]
    units = await asyncio.gather(*(stores[i % 2].take_unit(seller, allowance, c, Units()) for i, c in enumerate(commands)))
    taken = {unit: command for unit, command in zip(units, commands) if unit is not None}
    assert sorted(taken) == list(range(1, 11))

    await stores[0].give_back(seller, WEEK.key, 4, taken[4])
    late = unique("cmd")
    assert await stores[1].take_unit(seller, allowance, late, Units()) == 4
    assert await stores[0].take_unit(seller, allowance, unique("cmd"), Units()) is None
    assert await stores[0].units_used(seller, WEEK.key) == 10

    ledger = await stores[1].load(seller, "any-creator", WEEK)
    assert ledger.units[WEEK.key].held_by(late) == 4  # found by its command after a crash


async def test_unlimited_allowances_number_their_units(stores: list[QuotaStore]) -> None:
    seller = unique("s")
    allowance = Allowance(ChargeSource.WEEKLY, WEEK.key, None)
    units = await asyncio.gather(*(stores[i % 2].take_unit(seller, allowance, unique("cmd"), Units()) for i in range(12)))
    assert sorted(units) == list(range(1, 13))


async def test_first_frozen_tier_and_first_charge_win(stores: list[QuotaStore]) -> None:
    seller, creator = unique("s"), unique("c")
    frozen = await asyncio.gather(
        stores[0].freeze_week_tier(seller, WEEK.key, T1, "a"), stores[1].freeze_week_tier(seller, WEEK.key, T2, "b")
    )
    assert frozen[0] == frozen[1] and await stores[0].week_tier(seller, WEEK.key) == frozen[0]

    allowance = Allowance(ChargeSource.WEEKLY, WEEK.key, 50)
    first, second = Party(seller, creator, unique("cmd")), Party(seller, creator, unique("cmd"))
    claims = [
        Claim(party.command_id, allowance, await store.take_unit(seller, allowance, party.command_id, Units()), T1)
        for store, party in ((stores[0], first), (stores[1], second))
    ]
    charges = await asyncio.gather(
        stores[0].record_charge(first, claims[0], WEEK), stores[1].record_charge(second, claims[1], WEEK)
    )
    assert charges[0] == charges[1]
    assert await stores[0].charge_for(seller, WEEK.key, creator) == charges[0]
    assert await stores[1].charge_for(seller, WEEK.key, creator) == charges[0]


async def test_the_reply_count_counts_each_command_once_and_saturates(stores: list[QuotaStore]) -> None:
    seller, creator, slots = unique("s"), unique("c"), 6  # reply cap 5
    conversation = f"{seller}:{creator}"
    commands = [unique("cmd") for _ in range(8)]

    async def counted() -> list[str]:
        return (await stores[0].load(seller, creator, WEEK)).counted

    await asyncio.gather(*(stores[i % 2].count_seller_message(conversation, c, slots) for i, c in enumerate(commands[:3] * 2)))
    assert sorted(await counted()) == sorted(commands[:3])  # each delivered twice, racing
    await asyncio.gather(*(stores[i % 2].count_seller_message(conversation, c, slots) for i, c in enumerate(commands)))
    full = await counted()
    assert len(full) == slots == len(set(full)) and set(commands[:3]) <= set(full)
