"""Moderation's subscribers: every requested send is screened once."""

from typing import Any

from faststream.kafka import KafkaMessage
from pydantic import TypeAdapter, ValidationError

from im_contracts import MessageRejected, ReasonCode, RejectionStage, SendMessage, SendRequestedMessage, SendScreened, new_event_id, utcnow
from im_contracts.topics import SEND_REJECTED, SEND_REQUESTED, SEND_SCREENED

from services.common.idempotency import Decision
from services.common.outbox import Outgoing
from services.common.runtime import ServiceRuntime


def screened(send: SendMessage) -> Decision:
    now = utcnow()
    event = SendScreened(event_id=new_event_id(), occurred_at=now, command_id=send.command_id, send=send, screened_at=now)
    return Decision(outcome="screened", outgoing=(Outgoing.of(SEND_SCREENED, event),))


def invalid_command_rejection(command_id: str, body: dict[str, Any], error: str) -> MessageRejected:
    """A rejection carrying whatever ids the broken body still shows (I3)."""
    readable = {
        name: body[name]
        for name in _READABLE_FIELDS
        if body.get(name) is not None and _is_valid(name, body[name])
    }
    return MessageRejected(
        event_id=new_event_id(),
        occurred_at=utcnow(),
        command_id=command_id,
        stage=RejectionStage.MODERATION,
        reason=ReasonCode.INVALID_COMMAND,
        detail=f"invalid command: {error}"[:2000],
        **readable,
    )


_READABLE_FIELDS = ("seller_id", "creator_id", "sender", "bulk_id")
_FIELD_ADAPTERS = {name: TypeAdapter(MessageRejected.model_fields[name].annotation) for name in _READABLE_FIELDS}


def _is_valid(name: str, value: Any) -> bool:
    try:
        _FIELD_ADAPTERS[name].validate_python(value)
        return True
    except ValidationError:
        return False


def register(runtime: ServiceRuntime) -> None:
    async def reject_invalid(command_id: str, body: dict[str, Any], error: str, correlation_id: str | None) -> None:
        rejection = invalid_command_rejection(command_id, body, error)
        decision = Decision(outcome="rejected:INVALID_COMMAND", outgoing=(Outgoing.of(SEND_REJECTED, rejection),))
        stored = await runtime.decisions.record(rejection.command_id, decision)
        await runtime.publisher.send(stored.outgoing, correlation_id)

    runtime.invalid_input_hooks[SEND_REQUESTED] = reject_invalid

    @runtime.subscriber(SEND_REQUESTED, title="moderation:screen")
    async def screen(send: SendRequestedMessage, msg: KafkaMessage) -> None:
        async def decide() -> Decision:
            return screened(send)

        decision = await runtime.decisions.decide_once(send.command_id, decide)
        await runtime.publisher.send(decision.outgoing, msg.correlation_id)
        runtime.metrics.outcomes.labels(decision.outcome).inc()
