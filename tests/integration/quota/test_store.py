"""The ledger's unique-insert guarantees on the real database (FerretDB here):
racing claims never exceed a limit, a released unit is reused, a command finds
what it holds, and the first frozen tier and the first charge win."""

import asyncio
from datetime import UTC, datetime

import pytest
from pymongo import AsyncMongoClient

from im_contracts import ChargeSource
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
    assert await stores[1].charge_made_by(charges[0].command_id) == charges[0]
