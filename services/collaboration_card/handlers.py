"""Collaboration-card subscribers: card commands, and the outcomes of the card messages."""

from im_contracts import CollaborationCommand, MessageDelivered, SendDeliveredMessage, SendRejectedMessage
from im_contracts.topics import COLLABORATION_COMMANDS, SEND_DELIVERED, SEND_REJECTED

from services.collaboration_card import domain
from services.collaboration_card.domain import MessageOutcome
from services.collaboration_card.service import CardService
from services.common.batching import NOT_DECIDED, Incoming
from services.common.idempotency import Decision
from services.common.runtime import ServiceRuntime


def register(runtime: ServiceRuntime, service: CardService) -> None:
    async def publish(decision: Decision) -> None:
        await runtime.publisher.send(decision.outgoing, runtime.current_message().correlation_id)
        runtime.metrics.outcomes.labels(decision.outcome).inc()

    async def follow(event: MessageOutcome) -> None:
        if not domain.is_card_message(event):
            return
        decision = await runtime.decisions.decide_once(
            domain.outcome_key(event.command_id), lambda: service.follow_outcome(event)
        )
        await publish(decision)

    @runtime.subscriber(COLLABORATION_COMMANDS, title="collaboration:commands")
    async def on_command(command: CollaborationCommand) -> None:
        decision = await runtime.decisions.decide_once(command.command_id, lambda: service.decide(command))
        await publish(decision)

    async def on_delivered(batch: list[Incoming[MessageDelivered]]) -> list[Decision]:
        """Every delivered message, of which only card messages concern this service."""
        return [
            await runtime.decisions.decide_once(domain.outcome_key(event.command_id), lambda e=event: service.follow_outcome(e))
            if domain.is_card_message(event := item.message) else NOT_DECIDED
            for item in batch
        ]

    runtime.batch_subscriber(
        SEND_DELIVERED, SendDeliveredMessage, on_delivered, purpose="delivered", title="collaboration:card-delivered"
    )

    @runtime.subscriber(SEND_REJECTED, purpose="rejected", title="collaboration:card-rejected")
    async def on_rejected(event: SendRejectedMessage) -> None:
        await follow(event)
