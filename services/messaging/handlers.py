"""Messaging's subscribers: admitted sends become stored, numbered messages."""

from faststream.kafka import KafkaMessage

from im_contracts import SendAdmittedMessage, conversation_id
from im_contracts.topics import SEND_ADMITTED, SEND_DELIVERED

from services.common.outbox import Outgoing
from services.common.runtime import ServiceRuntime
from services.messaging.domain import delivered_event
from services.messaging.store import MessageStore


def register(runtime: ServiceRuntime, store: MessageStore) -> None:
    @runtime.subscriber(SEND_ADMITTED, title="messaging:deliver")
    async def deliver(admitted: SendAdmittedMessage, msg: KafkaMessage) -> None:
        send = admitted.send
        doc = await store.deliver(admitted, conversation_id(send.seller_id, send.creator_id))
        await runtime.publisher.send([Outgoing.of(SEND_DELIVERED, delivered_event(doc))], msg.correlation_id)
        runtime.metrics.outcomes.labels("delivered").inc()
