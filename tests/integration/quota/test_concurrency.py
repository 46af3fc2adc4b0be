"""Two quota instances admit concurrent sends of one tier-1 seller (50 new
creators a week) to 100 unconnected creators: exactly 50 are admitted (R3).

im.send.screened is keyed by seller, so normally one instance owns a seller;
here the screened sends are published keyed by conversation, spread over every
partition, as two owners overlapping in a rebalance would see them: both
instances judge the seller's sends at once and only the database's conditional
writes keep the count."""

import asyncio
from collections import Counter

import pytest

from im_contracts import SendMessage, SendScreened, kafka_key, new_event_id, utcnow
from im_contracts.topics import QUOTA_EVENTS, SEND_SCREENED
from services.common.runtime import ServiceRuntime
from services.quota.app import DEFAULT_POLICY_PATH, load_policy
from services.quota.store import QuotaStore
from tests.harness import Suite, unique
from tests.integration.quota.support import extra_quota_instance, report_gmv, report_profiles, seller_send

pytestmark = pytest.mark.integration


def screened_handled(runtime: ServiceRuntime) -> float:
    """Screened sends this instance handled, of any type."""
    return sum(
        sample.value
        for metric in runtime.metrics.registry.collect()
        for sample in metric.samples
        if sample.name == "im_messages_handled_total"
        and sample.labels.get("topic") == SEND_SCREENED
        and sample.labels.get("result") == "ok"
    )


def screened(send: SendMessage) -> SendScreened:
    return SendScreened(event_id=new_event_id(), occurred_at=utcnow(), command_id=send.command_id, send=send, screened_at=utcnow())


async def test_two_instances_admit_exactly_the_weekly_limit(suite: Suite) -> None:
    seller, creators = unique("s"), [unique("c") for _ in range(100)]
    await report_gmv(suite, seller, "1500")
    await report_profiles(suite, {creator: 1_000 + i * 190 for i, creator in enumerate(creators)})  # all ≤ 20,000

    async with extra_quota_instance(suite) as second:
        first = suite.runtimes["quota"]
        handled_before = screened_handled(first), screened_handled(second)
        now = utcnow()
        sends = [seller_send(seller, creator, at=now) for creator in creators]
        await asyncio.gather(*(
            suite.producer.send(SEND_SCREENED, screened(s).model_dump_json().encode(), key=kafka_key(s)) for s in sends
        ))
        await suite.producer.flush()
        outcomes = await asyncio.gather(*(suite.observer.outcome_of(s.command_id, timeout=60) for s in sends))
        handled_after = screened_handled(first), screened_handled(second)

    assert Counter(o.type for o in outcomes) == {"MessageDelivered": 50, "MessageRejected": 50}
    assert {o.reason for o in outcomes if o.type == "MessageRejected"} == {"QUOTA_EXHAUSTED"}
    assert all(o.quota_charged for o in outcomes if o.type == "MessageDelivered")
    charges = await suite.observer.wait_for(QUOTA_EVENTS, lambda m: m.seller_id == seller, count=50)
    assert sorted(c.used for c in charges) == list(range(1, 51))
    assert {c.creator_id for c in charges} == {o.creator_id for o in outcomes if o.type == "MessageDelivered"}
    assert all(after > before for before, after in zip(handled_before, handled_after))  # both instances took part
    assert await QuotaStore(first.db).units_used(seller, load_policy(DEFAULT_POLICY_PATH).week_of(now).key) == 50
