"""Messaging's subscribers: admitted sends become stored, numbered messages;
bulk commands fan out; fan-out outcomes complete their bulk job."""

from faststream.kafka import KafkaMessage

from im_contracts import BulkRequestedMessage, SendAdmittedMessage, SendRejectedMessage, conversation_id
from im_contracts.topics import BULK_REQUESTED, SEND_ADMITTED, SEND_REJECTED

from services.common.runtime import ServiceRuntime
from services.messaging.bulk import BulkCoordinator
from services.messaging.domain import DELIVERED, REJECTED, delivered_record
from services.messaging.store import MessageStore


def register(runtime: ServiceRuntime, store: MessageStore, bulk: BulkCoordinator) -> None:
    @runtime.subscriber(SEND_ADMITTED, title="messaging:deliver", pipeline=True)
    async def deliver(admitted: SendAdmittedMessage, msg: KafkaMessage) -> None:
        send = admitted.send
        doc = await store.deliver(admitted, conversation_id(send.seller_id, send.creator_id))
        await runtime.publisher.send([delivered_record(doc)], msg.correlation_id)
        runtime.metrics.outcomes.labels("delivered").inc()
        if doc.get("bulk_id"):
            await bulk.record_outcome(
                command_id=doc["_id"],
                bulk_id=doc["bulk_id"],
                creator_id=doc["creator_id"],
                outcome=DELIVERED,
                reason=None,
                correlation_id=msg.correlation_id,
            )

    @runtime.subscriber(BULK_REQUESTED, purpose="bulk", title="messaging:bulk-fan-out")
    async def fan_out(command: BulkRequestedMessage, msg: KafkaMessage) -> None:
        await bulk.fan_out(command, msg.correlation_id)
        runtime.metrics.outcomes.labels("bulk_fanned_out").inc()

    @runtime.subscriber(SEND_REJECTED, purpose="bulk-outcomes", title="messaging:bulk-rejections")
    async def track_rejection(rejected: SendRejectedMessage, msg: KafkaMessage) -> None:
        if rejected.bulk_id is None:
            return
        await bulk.record_outcome(
            command_id=rejected.command_id,
            bulk_id=rejected.bulk_id,
            creator_id=rejected.creator_id,
            outcome=REJECTED,
            reason=rejected.reason,
            correlation_id=msg.correlation_id,
        )
