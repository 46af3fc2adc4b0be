"""Moderation's subscribers: every requested send is screened once (R20), and
moderation commands change blocks and seller access (R11–R13)."""

from typing import Any

from pydantic import TypeAdapter, ValidationError

from im_contracts import (
    MessageRejected,
    ModerationCommand,
    ReasonCode,
    RejectionStage,
    SendMessage,
    SendRequestedMessage,
    SendScreened,
    new_event_id,
    utcnow,
)
from im_contracts.base import MAX_TEXT_LENGTH
from im_contracts.topics import MODERATION_COMMANDS, SEND_REJECTED, SEND_REQUESTED, SEND_SCREENED

from services.common.batching import Incoming
from services.common.idempotency import Decision, DecisionStore
from services.common.outbox import Outgoing
from services.common.runtime import ServiceRuntime
from services.moderation.domain import Refusal, screen
from services.moderation.follower import SubjectFollower
from services.moderation.policy import ContentPolicyFile
from services.moderation.store import ModerationStore


def screened(send: SendMessage) -> Decision:
    now = utcnow()
    event = SendScreened(event_id=new_event_id(), occurred_at=now, command_id=send.command_id, send=send, screened_at=now)
    return Decision(outcome="screened", outgoing=(Outgoing.of(SEND_SCREENED, event),))


def rejected(send: SendMessage, refusal: Refusal) -> Decision:
    rejection = MessageRejected(
        event_id=new_event_id(),
        occurred_at=utcnow(),
        command_id=send.command_id,
        seller_id=send.seller_id,
        creator_id=send.creator_id,
        sender=send.sender,
        kind=send.kind,
        card_id=send.card_id,
        bulk_id=send.bulk_id,
        stage=RejectionStage.MODERATION,
        reason=refusal.reason,
        detail=refusal.detail,
        rule_id=refusal.rule_id,
    )
    return Decision(outcome=f"rejected:{refusal.reason}", outgoing=(Outgoing.of(SEND_REJECTED, rejection),))


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


def send_with_text_out_of_bounds(body: dict[str, Any]) -> SendMessage | None:
    """The send a body describes when its only fault is a text outside 1–2,000
    characters: that is the sender's content problem (R14), judged in R20's
    order like any other send, not a malformed command."""
    text = body.get("text")
    if body.get("type") != "SendMessage" or not isinstance(text, str) or 1 <= len(text.strip()) <= MAX_TEXT_LENGTH:
        return None
    try:
        valid = SendMessage.model_validate({**body, "text": "-"})
    except ValidationError:
        return None
    return valid.model_copy(update={"text": text})


_READABLE_FIELDS = ("seller_id", "creator_id", "sender", "bulk_id")
_FIELD_ADAPTERS = {name: TypeAdapter(MessageRejected.model_fields[name].annotation) for name in _READABLE_FIELDS}


def _is_valid(name: str, value: Any) -> bool:
    try:
        _FIELD_ADAPTERS[name].validate_python(value)
        return True
    except ValidationError:
        return False


def register(
    runtime: ServiceRuntime, store: ModerationStore, subjects: SubjectFollower, command_decisions: DecisionStore,
    policy: ContentPolicyFile,
) -> None:
    async def judge_each(sends: list[SendMessage]) -> list[Decision]:
        facts = await subjects.screening_facts_each([(send.seller_id, send.creator_id) for send in sends])
        rules = policy.current()
        return [
            screened(send) if (refusal := screen(send, pair_facts, rules)) is None else rejected(send, refusal)
            for send, pair_facts in zip(sends, facts, strict=True)
        ]

    async def screen_each(sends: list[SendMessage]) -> list[Decision]:
        # The first stored decision wins: a block landing between a send and its
        # redelivery cannot turn a delivered send into a rejected one (I1, I2).
        return await runtime.decisions.decide_pure_each(
            [send.command_id for send in sends], lambda positions: judge_each([sends[n] for n in positions])
        )

    async def reject_invalid(command_id: str, body: dict[str, Any], error: str, correlation_id: str | None) -> None:
        send = send_with_text_out_of_bounds(body)
        if send is not None:
            (decision,) = await screen_each([send])
            await runtime.publisher.send(decision.outgoing, correlation_id)
            return
        rejection = invalid_command_rejection(command_id, body, error)
        decision = Decision(outcome="rejected:INVALID_COMMAND", outgoing=(Outgoing.of(SEND_REJECTED, rejection),))
        stored = await runtime.decisions.record(rejection.command_id, decision)
        await runtime.publisher.send(stored.outgoing, correlation_id)

    runtime.invalid_input_hooks[SEND_REQUESTED] = reject_invalid

    async def screen_batch(batch: list[Incoming[SendMessage]]) -> list[Decision]:
        return await screen_each([item.message for item in batch])

    runtime.batch_subscriber(SEND_REQUESTED, SendRequestedMessage, screen_batch, title="moderation:screen")

    @runtime.subscriber(MODERATION_COMMANDS, purpose="commands", title="moderation:commands")
    async def apply_command(command: ModerationCommand) -> None:
        # Own decision collection: a moderation command never shares a key with a send.
        decision = await command_decisions.decide_once(command.command_id, lambda: store.apply(command))
        await runtime.publisher.send(decision.outgoing, runtime.current_message().correlation_id)
        runtime.metrics.outcomes.labels(decision.outcome).inc()
