"""The starter pack, weekly exhaustion and tier freezing, with a small policy file
given to quota through its settings: starter pack 3, tier 1 limited to 2 a week
(R6, R7, R3)."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from im_contracts import ChargeSource
from im_contracts.topics import QUOTA_EVENTS
from services.common.runtime import ServiceRuntime
from services.quota.app import DEFAULT_POLICY_PATH, load_policy
from services.quota.book import pool_id
from services.quota.store import QuotaStore
from tests.harness import Suite, unique
from tests.integration.quota.support import creator_send, quota_replaced, report_gmv, report_profiles, send_and_wait, seller_send

pytestmark = pytest.mark.integration

WEEK_1 = datetime(2031, 9, 10, 17, 0, tzinfo=UTC)  # a Wednesday
WEEK_2, WEEK_3 = WEEK_1 + timedelta(weeks=1), WEEK_1 + timedelta(weeks=2)


@pytest.fixture(scope="module")
async def small_quota(suite: Suite, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServiceRuntime]:
    policy = tmp_path_factory.mktemp("quota") / "policy.yaml"
    policy.write_text(
        DEFAULT_POLICY_PATH.read_text()
        .replace("starter_pack_size: 1000", "starter_pack_size: 3")
        .replace("weekly_limit: 50\n", "weekly_limit: 2\n")
    )
    async with quota_replaced(suite, quota_policy_path=Path(policy)) as runtime:
        yield runtime


def charges_of(suite: Suite, seller: str) -> list:
    return suite.observer.messages(QUOTA_EVENTS, lambda m: m.seller_id == seller)


async def test_the_starter_pack_is_spent_once_and_never_refills(suite: Suite, small_quota: ServiceRuntime) -> None:
    seller, creators = unique("s"), [unique("c") for _ in range(5)]
    await report_profiles(suite, dict.fromkeys(creators, 500))

    outcomes = [await send_and_wait(suite, seller_send(seller, c, at=WEEK_1)) for c in creators[:4]]
    assert [o.type for o in outcomes] == ["MessageDelivered"] * 3 + ["MessageRejected"]
    assert (outcomes[3].stage, outcomes[3].reason) == ("quota", "QUOTA_EXHAUSTED") and "starter pack of 3" in outcomes[3].detail
    await suite.observer.wait_for(QUOTA_EVENTS, lambda m: m.seller_id == seller, count=3)
    assert [(c.source, c.used, c.limit) for c in charges_of(suite, seller)] == [(ChargeSource.STARTER_PACK, n, 3) for n in (1, 2, 3)]

    assert (await send_and_wait(suite, seller_send(seller, creators[0], at=WEEK_1))).quota_charged is False  # charged once
    await send_and_wait(suite, creator_send(seller, creators[3], at=WEEK_1))  # connected creators stay reachable
    assert (await send_and_wait(suite, seller_send(seller, creators[3], at=WEEK_1))).type == "MessageDelivered"
    assert (await send_and_wait(suite, seller_send(seller, creators[4], at=WEEK_2))).reason == "QUOTA_EXHAUSTED"

    await report_gmv(suite, seller, "0.01")  # the first sale: the tier's weekly limit from now on
    delivered = await send_and_wait(suite, seller_send(seller, creators[4], at=WEEK_2))
    assert delivered.quota_charged is True
    last = (await suite.observer.wait_for(QUOTA_EVENTS, lambda m: m.seller_id == seller, count=4))[-1]
    assert (last.source, last.used, last.limit) == (ChargeSource.WEEKLY, 1, 2)


async def test_a_weekly_limit_is_exhausted_until_the_week_ends(suite: Suite, small_quota: ServiceRuntime) -> None:
    seller, creators = unique("s"), [unique("c") for _ in range(3)]
    await report_gmv(suite, seller, "1500")
    await report_profiles(suite, dict.fromkeys(creators, 500))
    outcomes = [await send_and_wait(suite, seller_send(seller, c, at=WEEK_1)) for c in creators]
    assert [o.type for o in outcomes] == ["MessageDelivered"] * 2 + ["MessageRejected"]
    assert outcomes[2].reason == "QUOTA_EXHAUSTED" and "2031-09-14T00:00:00-07:00" in outcomes[2].detail
    assert (await send_and_wait(suite, seller_send(seller, creators[2], at=WEEK_2))).quota_charged is True


async def test_the_tier_is_frozen_for_the_week_at_its_first_charge(suite: Suite, small_quota: ServiceRuntime) -> None:
    seller, small, big, third, fourth = unique("s"), unique("c"), unique("big"), unique("c"), unique("c")
    await report_gmv(suite, seller, "100")
    await report_profiles(suite, {small: 500, big: 60_000, third: 500, fourth: 500})
    assert (await send_and_wait(suite, seller_send(seller, small, at=WEEK_1))).quota_charged is True
    await report_gmv(suite, seller, "20000")  # tier 2 (500 a week, no follower cap) from next week

    assert (await send_and_wait(suite, seller_send(seller, big, at=WEEK_1))).reason == "CREATOR_NOT_ELIGIBLE"
    assert (await send_and_wait(suite, seller_send(seller, third, at=WEEK_1))).quota_charged is True
    assert (await send_and_wait(suite, seller_send(seller, fourth, at=WEEK_1))).reason == "QUOTA_EXHAUSTED"
    assert (await send_and_wait(suite, seller_send(seller, big, at=WEEK_3))).quota_charged is True
    limits = [c.limit for c in await suite.observer.wait_for(QUOTA_EVENTS, lambda m: m.seller_id == seller, count=3)]
    assert limits == [2, 2, 500]


async def test_a_unit_taken_behind_the_owners_back_is_seen(suite: Suite, small_quota: ServiceRuntime) -> None:
    """The owner holds the seller's allowance in memory between batches; another writer
    (an old owner overlapping a rebalance) takes the last unit meanwhile: the owner's
    conditional write fails, and the send is judged again against the store (R3)."""
    seller, creators = unique("s"), [unique("c") for _ in range(2)]
    await report_gmv(suite, seller, "1500")
    await report_profiles(suite, dict.fromkeys(creators, 500))
    assert (await send_and_wait(suite, seller_send(seller, creators[0], at=WEEK_1))).quota_charged is True

    week = load_policy(small_quota.settings.quota_policy_path).week_of(WEEK_1)
    taken = await small_quota.db["allowances"].update_one(
        {"_id": pool_id(seller, week.key)}, {"$push": {"holders": "another-owner"}, "$inc": {"handed_out": 1, "v": 1}})
    assert taken.modified_count == 1

    refused = await send_and_wait(suite, seller_send(seller, creators[1], at=WEEK_1))
    assert (refused.type, refused.reason) == ("MessageRejected", "QUOTA_EXHAUSTED")
    assert await QuotaStore(small_quota.db).units_used(seller, week.key) == 2
