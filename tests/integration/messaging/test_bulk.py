"""Bulk sends through real Kafka and the database (R19): fan-out with derived
ids, one summary per bulk whatever the outcomes, idempotent redelivery, and a
fan-out that resumes after a restart."""

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from im_contracts import (
    BlockCreator,
    BlockSeller,
    BulkSendMessage,
    EntryPoint,
    MessageRejected,
    ReasonCode,
    RejectionStage,
    SendAdmitted,
    SendMessage,
    fan_out_command_id,
    new_event_id,
    utcnow,
)
from im_contracts.topics import (
    BULK_COMPLETED,
    BULK_REQUESTED,
    MODERATION_COMMANDS,
    MODERATION_EVENTS,
    SEND_ADMITTED,
    SEND_REJECTED,
    SEND_REQUESTED,
)
from services.messaging.bulk import BulkCoordinator
from services.messaging.domain import DELIVERED, REJECTED, bulk_job_document, fan_out_of
from services.messaging.store import BulkStore
from tests.harness import Suite, unique
from tests.integration.inbox_projection.support import converse

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


def bulk_command(seller: str, creators: list[str], command_id: str | None = None) -> BulkSendMessage:
    return BulkSendMessage(
        command_id=command_id or unique("bulk"), occurred_at=utcnow(), seller_id=seller, creator_ids=tuple(creators), text="Our new collection is out!"
    )


async def summary_of(suite: Suite, bulk_id: str):  # noqa: ANN201 - a BulkSendCompleted
    return (await suite.observer.wait_for(BULK_COMPLETED, lambda m: m.command_id == bulk_id, timeout=60))[0]


def expected_summary(outcomes: list) -> tuple[int, int, dict[str, int]]:
    rejected = Counter(str(o.reason) for o in outcomes if o.type == "MessageRejected")
    return sum(o.type == "MessageDelivered" for o in outcomes), sum(rejected.values()), dict(rejected)


def admitted(send: SendMessage) -> SendAdmitted:
    return SendAdmitted(event_id=new_event_id(), occurred_at=utcnow(), command_id=send.command_id, send=send, quota_charged=False, connected=True)


def rejected(send: SendMessage, reason: ReasonCode, command_id: str | None = None) -> MessageRejected:
    return MessageRejected(
        event_id=new_event_id(),
        occurred_at=utcnow(),
        command_id=command_id or send.command_id,
        seller_id=send.seller_id,
        creator_id=send.creator_id,
        sender=send.sender,
        bulk_id=send.bulk_id,
        stage=RejectionStage.QUOTA,
        reason=reason,
        detail="refused",
    )


async def test_a_bulk_fans_out_one_send_per_creator_and_summarises_their_outcomes(suite: Suite) -> None:
    seller = unique("s")
    connected = [unique("c") for _ in range(3)]
    await asyncio.gather(*(converse(suite, seller, creator, "creator") for creator in connected))
    creators = connected + [unique("c") for _ in range(22)]
    bulk = bulk_command(seller, creators)
    await suite.publish(BULK_REQUESTED, bulk)

    summary = await summary_of(suite, bulk.command_id)
    fan_outs = suite.observer.messages(SEND_REQUESTED, lambda m: m.bulk_id == bulk.command_id)
    assert sorted(m.command_id for m in fan_outs) == sorted(fan_out_command_id(bulk.command_id, c) for c in creators)
    assert {(m.seller_id, m.sender, m.entry_point, m.text, m.occurred_at) for m in fan_outs} == {
        (seller, "seller", EntryPoint.BULK, bulk.text, bulk.occurred_at)
    }
    outcomes = [await suite.observer.outcome_of(fan_out_command_id(bulk.command_id, c)) for c in creators]
    assert all(o.bulk_id == bulk.command_id for o in outcomes)
    assert all(o.type == "MessageDelivered" and o.entry_point == "bulk" for o in outcomes[:3])  # connected creators
    assert (summary.seller_id, summary.total) == (seller, 25)
    assert (summary.delivered, summary.rejected, {str(k): v for k, v in summary.rejected_by_reason.items()}) == expected_summary(outcomes)


async def test_a_redelivered_bulk_never_fans_out_a_different_set(suite: Suite) -> None:
    seller = unique("s")
    first_creators = [unique("c") for _ in range(3)]
    original = bulk_command(seller, first_creators)
    await suite.publish(BULK_REQUESTED, original)
    summary = await summary_of(suite, original.command_id)

    intruder = unique("c")
    altered = bulk_command(seller, [intruder], command_id=original.command_id)
    await suite.publish(BULK_REQUESTED, original)
    await suite.publish(BULK_REQUESTED, altered)
    marker = bulk_command(seller, [unique("c")])  # same seller: same partition, handled after both
    await suite.publish(BULK_REQUESTED, marker)
    await summary_of(suite, marker.command_id)

    assert not suite.observer.messages(SEND_REQUESTED, lambda m: m.creator_id == intruder)
    fan_outs = Counter(m.command_id for m in suite.observer.messages(SEND_REQUESTED, lambda m: m.bulk_id == original.command_id))
    assert set(fan_outs) == {fan_out_command_id(original.command_id, c) for c in first_creators}
    summaries = suite.observer.messages(BULK_COMPLETED, lambda m: m.command_id == original.command_id)
    assert {s.event_id for s in summaries} == {summary.event_id}


async def test_mixed_outcomes_complete_the_bulk_once(suite: Suite) -> None:
    """Outcomes drive completion: deliveries (messaging's own) and rejections
    from im.send.rejected, replayed and interleaved, give one summary."""
    messaging = suite.runtimes["messaging"]
    bulk = bulk_command(unique("s"), [unique("c") for _ in range(6)])
    await BulkStore(messaging.db).record_job(bulk_job_document(bulk, utcnow()))  # fanned out before a restart
    sends = fan_out_of(await BulkStore(messaging.db).find_job(bulk.command_id) or {})
    reasons = [ReasonCode.BLOCKED_BY_CREATOR, ReasonCode.QUOTA_EXHAUSTED, ReasonCode.QUOTA_EXHAUSTED]

    await suite.publish(SEND_REJECTED, rejected(sends[0], ReasonCode.BLOCKED_BY_SELLER, command_id=unique("other")))  # not a fan-out
    for send, reason in zip(sends[3:], reasons, strict=True):
        await suite.publish(SEND_REJECTED, rejected(send, reason))
    for send in sends[:3]:
        await suite.publish(SEND_ADMITTED, admitted(send))
    await suite.publish(SEND_REJECTED, rejected(sends[4], ReasonCode.QUOTA_EXHAUSTED))  # replayed

    summary = await summary_of(suite, bulk.command_id)
    assert (summary.total, summary.delivered, summary.rejected) == (6, 3, 3)
    assert summary.rejected_by_reason == {ReasonCode.BLOCKED_BY_CREATOR: 1, ReasonCode.QUOTA_EXHAUSTED: 2}
    delivered = [await suite.observer.outcome_of(s.command_id) for s in sends[:3]]
    assert {d.type for d in delivered} == {"MessageDelivered"}


async def test_two_instances_racing_on_the_last_outcomes_publish_one_summary(suite: Suite) -> None:
    messaging = suite.runtimes["messaging"]
    instances = [BulkCoordinator(BulkStore(messaging.db), messaging.publisher) for _ in range(2)]
    bulk = bulk_command(unique("s"), [unique("c") for _ in range(20)])
    job = await instances[0].store.record_job(bulk_job_document(bulk, utcnow()))
    outcomes = [
        dict(command_id=s.command_id, bulk_id=bulk.command_id, creator_id=s.creator_id, outcome=REJECTED if i % 4 == 0 else DELIVERED,
             reason=ReasonCode.QUOTA_EXHAUSTED if i % 4 == 0 else None, correlation_id=None)
        for i, s in enumerate(fan_out_of(job))
    ]
    await asyncio.gather(*(instances[i % 2].record_outcome(**o) for i, o in enumerate(outcomes + outcomes)))

    summary = await summary_of(suite, bulk.command_id)
    assert (summary.total, summary.delivered, summary.rejected) == (20, 15, 5)
    assert await messaging.db["bulk_completions"].count_documents({"_id": bulk.command_id}) == 1
    published = suite.observer.messages(BULK_COMPLETED, lambda m: m.command_id == bulk.command_id)
    assert {s.event_id for s in published} == {summary.event_id}


async def test_a_restarted_fan_out_resumes_where_it_stopped(suite: Suite) -> None:
    """The state a service killed half-way through a fan-out leaves behind: the
    job, its first sends published, their progress noted. The redelivered
    command (its offset was never committed) publishes only the rest."""
    store = BulkStore(suite.runtimes["messaging"].db)
    creators = [unique("c") for _ in range(12)]
    bulk = bulk_command(unique("s"), creators)
    sends = fan_out_of(await store.record_job(bulk_job_document(bulk, utcnow())))
    for send in sends[:5]:
        await suite.publish(SEND_REQUESTED, send)
    await store.note_progress(bulk.command_id, 5)

    await suite.publish(BULK_REQUESTED, bulk)
    summary = await summary_of(suite, bulk.command_id)
    requested = await suite.observer.wait_for(SEND_REQUESTED, lambda m: m.bulk_id == bulk.command_id, count=12)
    assert Counter(m.command_id for m in requested) == Counter(s.command_id for s in sends)
    outcomes = [await suite.observer.outcome_of(s.command_id) for s in sends]
    assert summary.total == 12
    assert (summary.delivered, summary.rejected, {str(k): v for k, v in summary.rejected_by_reason.items()}) == expected_summary(outcomes)
    assert (await store.find_job(bulk.command_id) or {})["fanned_out"] == 12


def moderation_blocks_sends() -> bool:
    return any("CreatorBlocked(" in path.read_text() for path in (REPO / "services" / "moderation").glob("*.py"))


@pytest.mark.skipif(not moderation_blocks_sends(), reason="moderation is still the pass-through: no blocks to reject with")
async def test_a_bulk_to_blocked_creators_reports_them_by_reason(suite: Suite) -> None:
    seller = unique("s")
    reachable, blocked_by_seller, blocking_seller = unique("c"), unique("c"), unique("c")
    await converse(suite, seller, reachable, "creator")  # connected: quota lets the seller reply
    blocks = [
        BlockCreator(command_id=unique("b"), occurred_at=utcnow(), seller_id=seller, creator_id=blocked_by_seller),
        BlockSeller(command_id=unique("b"), occurred_at=utcnow(), seller_id=seller, creator_id=blocking_seller),
    ]
    for block in blocks:
        await suite.publish(MODERATION_COMMANDS, block)
    for block in blocks:
        await suite.observer.wait_for(MODERATION_EVENTS, lambda m, b=block: m.command_id == b.command_id)

    bulk = bulk_command(seller, [reachable, blocked_by_seller, blocking_seller])
    await suite.publish(BULK_REQUESTED, bulk)
    summary = await summary_of(suite, bulk.command_id)
    assert (summary.total, summary.delivered, summary.rejected) == (3, 1, 2)
    assert summary.rejected_by_reason == {ReasonCode.BLOCKED_BY_SELLER: 1, ReasonCode.BLOCKED_BY_CREATOR: 1}


async def test_a_count_left_ahead_by_a_crash_still_completes_once_every_outcome_is_in(suite: Suite) -> None:
    messaging = suite.runtimes["messaging"]
    coordinator = BulkCoordinator(BulkStore(messaging.db), messaging.publisher)
    bulk = bulk_command(unique("s"), [unique("c") for _ in range(4)])
    job = await coordinator.store.record_job(bulk_job_document(bulk, utcnow()))
    sends = fan_out_of(job)
    # Counted twice ahead: killed after counting the first send but before noting the count on its outcome, twice.
    await coordinator.store.jobs.update_one({"_id": bulk.command_id}, {"$inc": {"tallied": 2}})

    async def outcome(send: SendMessage) -> None:
        await coordinator.record_outcome(
            command_id=send.command_id, bulk_id=bulk.command_id, creator_id=send.creator_id, outcome=DELIVERED, reason=None, correlation_id=None
        )

    for send in sends[:3]:
        await outcome(send)  # counts 3, 4, 5: at or past the total, yet incomplete
    assert await coordinator.store.find_completion(bulk.command_id) is None
    await outcome(sends[3])
    summary = await summary_of(suite, bulk.command_id)
    assert (summary.total, summary.delivered, summary.rejected) == (4, 4, 0)
