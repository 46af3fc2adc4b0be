"""Quota's subscribers: every screened send is admitted or refused once."""

from faststream.kafka import KafkaMessage

from im_contracts import SendAdmitted, SendScreenedMessage, new_event_id, utcnow
from im_contracts.topics import SEND_ADMITTED, SEND_SCREENED

from services.common.idempotency import Decision
from services.common.outbox import Outgoing
from services.common.runtime import ServiceRuntime


def register(runtime: ServiceRuntime) -> None:
    @runtime.subscriber(SEND_SCREENED, title="quota:admit")
    async def admit(screened: SendScreenedMessage, msg: KafkaMessage) -> None:
        async def decide() -> Decision:
            admitted = SendAdmitted(
                event_id=new_event_id(),
                occurred_at=utcnow(),
                command_id=screened.command_id,
                send=screened.send,
                quota_charged=False,
                connected=False,
            )
            return Decision(outcome="admitted", outgoing=(Outgoing.of(SEND_ADMITTED, admitted),))

        decision = await runtime.decisions.decide_once(screened.command_id, decide)
        await runtime.publisher.send(decision.outgoing, msg.correlation_id)
        runtime.metrics.outcomes.labels(decision.outcome).inc()
