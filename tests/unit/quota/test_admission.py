"""Admission end to end over an in-memory store: what is published, what is
charged, tier freezing, the starter pack, and resuming after a crash (R3-R10, I2)."""

import asyncio
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from im_contracts import ChargeSource, MessageKind, ReasonCode
from im_contracts.topics import QUOTA_EVENTS, SEND_ADMITTED

from services.quota.admission import Admission
from services.quota.domain import STARTER_POOL, Units, allowance
from tests.unit.quota.builders import SMALL, published, send
from tests.unit.quota.fakes import InMemoryQuotaStore

MONDAY = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)  # in the week starting Sunday 2026-01-04 (LA)
NEXT_WEEK = MONDAY + timedelta(days=7)
T0, T1, T2, T3 = SMALL.tiers


@pytest.fixture
def store() -> InMemoryQuotaStore:
    store = InMemoryQuotaStore()
    store.followers_by_creator.update({f"c{i}": 1_000 for i in range(10)} | {"big": 50_000})
    return store


@pytest.fixture
def admission(store: InMemoryQuotaStore) -> Admission:
    return Admission(store, SMALL)


async def outcome(admission: Admission, *args: object, **kwargs: object) -> dict:
    return published(await admission.decide(send(*args, **kwargs)))


async def test_creator_send_is_admitted_uncharged_and_connects(admission: Admission, store: InMemoryQuotaStore) -> None:
    decision = await admission.decide(send("s", "unknown-creator", MONDAY, sender="creator"))
    admitted = published(decision)["SendAdmitted"]
    assert (decision.outcome, admitted.quota_charged, admitted.connected) == ("admitted", False, True)
    assert [o.topic for o in decision.outgoing] == [SEND_ADMITTED]
    assert ("s", "unknown-creator") in store.connections and "s:unknown-creator" in store.reply_lifts


async def test_first_outreach_is_charged_once_per_creator_and_week(admission: Admission, store: InMemoryQuotaStore) -> None:
    store.gmv_by_seller["s"] = Decimal(1500)
    first = await admission.decide(send("s", "c1", MONDAY))
    charged = published(first)["OutreachCharged"]
    assert first.outcome == "admitted:charged" and [o.topic for o in first.outgoing] == [QUOTA_EVENTS, SEND_ADMITTED]
    assert (charged.source, charged.used, charged.limit) == (ChargeSource.WEEKLY, 1, 2)
    assert charged.week_start.isoformat() == "2026-01-04T00:00:00-08:00"
    assert published(first)["SendAdmitted"].quota_charged is True

    again = await outcome(admission, "s", "c1", MONDAY + timedelta(days=5), kind=MessageKind.PRODUCT_CARD)
    assert "OutreachCharged" not in again and again["SendAdmitted"].quota_charged is False
    next_week = await outcome(admission, "s", "c1", NEXT_WEEK)
    assert next_week["OutreachCharged"].used == 1 and next_week["OutreachCharged"].week_start.day == 11


async def test_weekly_limit_then_quota_exhausted_but_connected_creators_stay_reachable(admission: Admission, store: InMemoryQuotaStore) -> None:
    store.gmv_by_seller["s"] = Decimal(1)
    assert [(await outcome(admission, "s", c, MONDAY))["OutreachCharged"].used for c in ("c1", "c2")] == [1, 2]
    refused = (await outcome(admission, "s", "c3", MONDAY))["MessageRejected"]
    assert (refused.reason, refused.stage) == (ReasonCode.QUOTA_EXHAUSTED, "quota")
    store.connections.add(("s", "c3"))
    assert (await outcome(admission, "s", "c3", MONDAY))["SendAdmitted"].connected is True
    assert (await outcome(admission, "s", "c4", NEXT_WEEK))["OutreachCharged"].used == 1  # a new week


async def test_starter_pack_is_one_time_then_gmv_brings_the_weekly_limit(admission: Admission, store: InMemoryQuotaStore) -> None:
    charges = [(await outcome(admission, "s", f"c{i}", MONDAY))["OutreachCharged"] for i in range(3)]
    assert [(c.source, c.used, c.limit) for c in charges] == [(ChargeSource.STARTER_PACK, n, 3) for n in (1, 2, 3)]
    assert (await outcome(admission, "s", "c3", MONDAY))["MessageRejected"].reason == ReasonCode.QUOTA_EXHAUSTED
    refused = (await outcome(admission, "s", "c3", NEXT_WEEK))["MessageRejected"]
    assert refused.reason == ReasonCode.QUOTA_EXHAUSTED and "starter pack" in refused.detail  # never refills

    store.gmv_by_seller["s"] = Decimal("0.50")
    charged = (await outcome(admission, "s", "c3", NEXT_WEEK))["OutreachCharged"]
    assert (charged.source, charged.used, charged.limit) == (ChargeSource.WEEKLY, 1, 2)


async def test_an_exhausted_starter_pack_does_not_freeze_the_week(admission: Admission, store: InMemoryQuotaStore) -> None:
    for i in range(3):
        await admission.decide(send("s", f"c{i}", MONDAY - timedelta(days=7)))
    assert (await outcome(admission, "s", "c5", MONDAY))["MessageRejected"].reason == ReasonCode.QUOTA_EXHAUSTED
    store.gmv_by_seller["s"] = Decimal(10)  # the first sale, mid-week: no charge froze this week yet
    assert (await outcome(admission, "s", "c5", MONDAY))["OutreachCharged"].source == ChargeSource.WEEKLY


async def test_tier_is_frozen_for_the_week_at_its_first_charge(admission: Admission, store: InMemoryQuotaStore) -> None:
    store.gmv_by_seller["s"] = Decimal(100)
    await admission.decide(send("s", "c1", MONDAY))
    store.gmv_by_seller["s"] = Decimal(10_000)  # T2 from now on, but this week stays T1
    assert (await outcome(admission, "s", "big", MONDAY))["MessageRejected"].reason == ReasonCode.CREATOR_NOT_ELIGIBLE
    assert (await outcome(admission, "s", "c2", MONDAY))["OutreachCharged"].limit == 2
    assert (await outcome(admission, "s", "c3", MONDAY))["MessageRejected"].reason == ReasonCode.QUOTA_EXHAUSTED
    assert (await outcome(admission, "s", "big", NEXT_WEEK))["OutreachCharged"].limit == 4


async def test_tier_zero_freezes_the_week_on_the_starter_pack(admission: Admission, store: InMemoryQuotaStore) -> None:
    await admission.decide(send("s", "c1", MONDAY))
    store.gmv_by_seller["s"] = Decimal(10)
    assert (await outcome(admission, "s", "c2", MONDAY))["OutreachCharged"].source == ChargeSource.STARTER_PACK
    assert (await outcome(admission, "s", "c3", NEXT_WEEK))["OutreachCharged"].source == ChargeSource.WEEKLY


async def test_reply_cap_counts_admitted_seller_messages_until_the_creator_writes(admission: Admission) -> None:
    sends = [send("s", "c1", MONDAY + timedelta(minutes=i)) for i in range(5)]
    for command in sends:
        assert (await admission.decide(command)).outcome.startswith("admitted")
    refused = (await outcome(admission, "s", "c1", MONDAY, kind=MessageKind.TARGET_COLLABORATION))["MessageRejected"]
    assert refused.reason == ReasonCode.REPLY_REQUIRED and refused.card_id is not None and refused.kind == "target_collaboration"
    # redeciding the fifth (a crash before its decision was stored) does not count it twice
    assert (await admission.decide(sends[-1])).outcome == "admitted"
    await admission.decide(send("s", "c1", MONDAY, sender="creator"))
    assert (await admission.decide(send("s", "c1", MONDAY))).outcome == "admitted"


async def test_sample_review_passes_whatever_the_standing(admission: Admission) -> None:
    for _ in range(5):
        await admission.decide(send("s", "c1", MONDAY))
    decision = await admission.decide(send("s", "nobody-knows", MONDAY, kind=MessageKind.SAMPLE_REVIEW))
    assert decision.outcome == "admitted"
    decision = await admission.decide(send("s", "c1", MONDAY, kind=MessageKind.SAMPLE_REVIEW))
    assert decision.outcome == "admitted"


async def test_rejection_copies_the_send(admission: Admission) -> None:
    command = send("s", "nobody-knows", MONDAY, kind=MessageKind.PRODUCT_CARD, bulk_id="bulk-1")
    rejected = published(await admission.decide(command))["MessageRejected"]
    assert (rejected.command_id, rejected.seller_id, rejected.creator_id, rejected.sender) == (command.command_id, "s", "nobody-knows", "seller")
    assert (rejected.kind, rejected.card_id, rejected.bulk_id) == ("product_card", command.card_id, "bulk-1")
    assert (rejected.stage, rejected.reason) == ("quota", ReasonCode.CREATOR_NOT_ELIGIBLE)


async def test_redeciding_a_charged_send_replays_its_charge(admission: Admission, store: InMemoryQuotaStore) -> None:
    command = send("s", "c1", MONDAY)
    first = published(await admission.decide(command))["OutreachCharged"]
    store.followers_by_creator["c1"] = 10_000_000  # even if the facts changed since
    again = published(await admission.decide(command))["OutreachCharged"]
    assert (again.used, again.source, again.week_start) == (first.used, first.source, first.week_start)
    assert len(store.held_units()) == 1 and len(store.charges) == 1


async def test_a_unit_held_before_a_crash_is_used_not_a_new_one(admission: Admission, store: InMemoryQuotaStore) -> None:
    command = send("s", "c1", MONDAY)
    week = SMALL.week_of(MONDAY)
    held = await store.take_unit("s", allowance(T0, week, SMALL), command.command_id, Units())
    charged = published(await admission.decide(command))["OutreachCharged"]
    assert charged.used == held and store.held_units() == [("s", STARTER_POOL, held, command.command_id)]


async def test_a_unit_under_a_tier_the_week_did_not_freeze_is_given_back(admission: Admission, store: InMemoryQuotaStore) -> None:
    """Two instances judged the week's first charges under different GMV reports."""
    week = SMALL.week_of(MONDAY)
    store.week_tiers[("s", week.key)] = T1  # another send froze T1 meanwhile
    command = send("s", "c1", MONDAY)
    await store.take_unit("s", allowance(T0, week, SMALL), command.command_id, Units())  # under T0: the starter pack
    charged = published(await admission.decide(command))["OutreachCharged"]
    assert (charged.source, charged.limit) == (ChargeSource.WEEKLY, 2)
    assert store.held_units() == [("s", week.key, 1, command.command_id)]


async def test_concurrent_first_outreach_to_one_creator_charges_once(admission: Admission, store: InMemoryQuotaStore) -> None:
    decisions = await asyncio.gather(*(admission.decide(send("s", "c1", MONDAY)) for _ in range(6)))
    assert sum(d.outcome == "admitted:charged" for d in decisions) == 1
    assert len(store.held_units()) == 1  # the losers gave their units back


@pytest.mark.parametrize("seed", range(20))
async def test_concurrent_deliveries_of_one_command_keep_one_unit(seed: int) -> None:
    """A rebalance overlapping the old owner: both deliveries may take a unit; the one
    whose unit the charge does not name gives it back."""
    store = InMemoryQuotaStore(rng=random.Random(seed))
    store.followers_by_creator["c1"] = 1_000
    store.gmv_by_seller["s"] = Decimal(10_000)
    admission = Admission(store, SMALL)
    command = send("s", "c1", MONDAY)
    decisions = await asyncio.gather(admission.decide(command), admission.decide(command))
    charged = [published(d)["OutreachCharged"].used for d in decisions]
    assert charged[0] == charged[1]  # both name the one charge
    assert len(store.charges) == 1 and len(store.held_units()) == 1
    assert store.held_units()[0][2] == next(iter(store.charges.values())).used
    assert sum(map(len, store.counted.values())) == 1  # counted once for R9
