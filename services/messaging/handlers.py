"""Messaging's subscribers: admitted sends become stored, numbered messages;
bulk commands fan out; fan-out outcomes complete their bulk job."""

from collections.abc import Sequence

from im_contracts import BulkRequestedMessage, MessageRejected, SendAdmitted, SendAdmittedMessage, SendRejectedMessage
from im_contracts.topics import BULK_REQUESTED, SEND_ADMITTED, SEND_REJECTED

from services.common.batching import NOT_DECIDED, Incoming
from services.common.idempotency import Decision
from services.common.runtime import ServiceRuntime
from services.messaging.bulk import BulkCoordinator, Outcome
from services.messaging.domain import DELIVERED, REJECTED, delivered_record
from services.messaging.store import MessageStore


def register(runtime: ServiceRuntime, store: MessageStore, bulk: BulkCoordinator) -> None:
    async def deliver(batch: list[Incoming[SendAdmitted]]) -> list[Decision]:
        docs = await store.deliver_each([item.message for item in batch])
        return [Decision(outcome="delivered", outgoing=(delivered_record(doc),), facts=doc) for doc in docs]

    async def count_bulk_deliveries(batch: list[Incoming[SendAdmitted]], decisions: Sequence[Decision]) -> None:
        await bulk.record_outcomes([
            Outcome(command_id=doc["_id"], bulk_id=doc["bulk_id"], creator_id=doc["creator_id"], outcome=DELIVERED,
                    reason=None, correlation_id=item.correlation_id)
            for item, doc in ((item, decision.facts) for item, decision in zip(batch, decisions, strict=True))
            if doc.get("bulk_id")
        ])

    runtime.batch_subscriber(
        SEND_ADMITTED, SendAdmittedMessage, deliver, title="messaging:deliver", after_publish=count_bulk_deliveries,
        on_rebalance=store.forget_counters,  # a partition handed back may have been written by its other owner
    )

    @runtime.subscriber(BULK_REQUESTED, purpose="bulk", title="messaging:bulk-fan-out")
    async def fan_out(command: BulkRequestedMessage) -> None:
        await bulk.fan_out(command, runtime.current_message().correlation_id)
        runtime.metrics.outcomes.labels("bulk_fanned_out").inc()

    async def track_rejections(batch: list[Incoming[MessageRejected]]) -> list[Decision]:
        await bulk.record_outcomes([
            Outcome(command_id=rejected.command_id, bulk_id=rejected.bulk_id, creator_id=rejected.creator_id,
                    outcome=REJECTED, reason=rejected.reason, correlation_id=item.correlation_id)
            for item in batch
            if (rejected := item.message).bulk_id is not None
        ])
        return [NOT_DECIDED] * len(batch)

    runtime.batch_subscriber(
        SEND_REJECTED, SendRejectedMessage, track_rejections, purpose="bulk-outcomes", title="messaging:bulk-rejections"
    )
