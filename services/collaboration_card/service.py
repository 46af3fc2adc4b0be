"""What the service does with each command and each card message's outcome.

Every use case performs its own idempotent writes, then returns the Decision to store and
publish; the handlers run it through `decide_once`, so a redelivery replays the stored
decision instead of deciding again (I1, I2).
"""

from typing import Any

from structlog.stdlib import BoundLogger

from im_contracts import (
    CollaborationCommand,
    MessageKind,
    MessageRejected,
    RequestSample,
    RespondToTargetCollaboration,
    ReviewSampleRequest,
    SampleReviewFailure,
    SendProductCard,
    SendTargetCollaboration,
)
from im_contracts.topics import COLLABORATION_EVENTS, SEND_REQUESTED

from services.collaboration_card import domain
from services.collaboration_card.domain import CardCommand, MessageOutcome, ResponseRefusal, Stamp
from services.collaboration_card.store import CardStore
from services.common.idempotency import Decision
from services.common.outbox import Outgoing


class CardService:
    def __init__(self, store: CardStore, log: BoundLogger) -> None:
        self.store = store
        self.log = log

    async def decide(self, command: CollaborationCommand) -> Decision:
        match command:
            case SendProductCard() | SendTargetCollaboration() | RequestSample():
                return await self.send_card(command)
            case RespondToTargetCollaboration():
                return await self.respond(command)
            case ReviewSampleRequest():
                return await self.review(command)
        raise TypeError(f"not a collaboration command: {type(command).__name__}")

    async def send_card(self, command: CardCommand) -> Decision:
        """Store the card, then send it through the pipeline like any message (R18).
        The message goes first so nobody learns a sample request's id before its card."""
        card = domain.new_card(command)
        await self.store.add(card)
        outgoing = [Outgoing.of(SEND_REQUESTED, domain.card_message(command, card))]
        if isinstance(command, RequestSample):
            outgoing.append(Outgoing.of(COLLABORATION_EVENTS, domain.sample_requested(card, Stamp())))
        return Decision(outcome=f"card_sent:{card['kind']}", outgoing=tuple(outgoing), facts={"card_id": card["_id"]})

    async def respond(self, command: RespondToTargetCollaboration) -> Decision:
        card = await self.store.find(command.card_id)
        refusal = domain.response_refusal(card, command)
        if refusal is None:
            holder = await self.store.answer_once(command.card_id, "response", domain.response_facts(command))
            if holder != command.command_id:
                refusal = ResponseRefusal.ALREADY_RESPONDED
        if refusal is not None:
            # The contract has no failure event for responses: the refusal is stored, logged, counted.
            self.log.warning(
                "target-collaboration response refused",
                card_id=command.card_id,
                creator_id=command.creator_id,
                refusal=str(refusal),
            )
            return Decision(outcome=f"response_refused:{refusal}", facts={"card_id": command.card_id})
        event = domain.response_event(card, command, Stamp())
        return Decision(outcome=f"responded:{command.response}", outgoing=(Outgoing.of(COLLABORATION_EVENTS, event),))

    async def review(self, command: ReviewSampleRequest) -> Decision:
        card = await self.store.find(command.sample_request_id)
        failure = domain.review_refusal(card, command)
        if failure is None:
            holder = await self.store.answer_once(command.sample_request_id, "review", domain.seller_review_facts(command))
            if holder != command.command_id:
                failure = SampleReviewFailure.ALREADY_REVIEWED
        if failure is not None:
            failed = domain.review_failed(card, command, failure, Stamp())
            return Decision(outcome=f"review_failed:{failure}", outgoing=(Outgoing.of(COLLABORATION_EVENTS, failed),))
        outgoing = (
            Outgoing.of(SEND_REQUESTED, domain.review_message(card, command)),
            Outgoing.of(COLLABORATION_EVENTS, domain.review_event(card, command, Stamp())),
        )
        return Decision(outcome=f"reviewed:{command.decision}", outgoing=outgoing)

    async def follow_outcome(self, event: MessageOutcome) -> Decision:
        """The card's outcome follows its message's: CardDelivered or CardRejected, once."""
        card = await self.store.find(event.card_id)
        if card is None or not domain.is_own_message(card, event):
            self.log.warning(
                "outcome of a card message this service did not send",
                card_id=event.card_id,
                kind=str(event.kind),
                message_command_id=event.command_id,
            )
            return Decision(outcome="outcome_ignored")
        await self.store.record(card["_id"], {f"deliveries.{event.kind}": domain.delivery_facts(event)})
        if isinstance(event, MessageRejected) and event.kind is MessageKind.SAMPLE_REQUEST:
            await self._close_unreceived_sample_request(card, event)
        outcome = domain.card_outcome_event(card, event, Stamp())
        return Decision(
            outcome=f"{outcome.type}:{event.kind}", outgoing=(Outgoing.of(COLLABORATION_EVENTS, outcome),)
        )

    async def _close_unreceived_sample_request(self, card: dict[str, Any], rejection: MessageRejected) -> None:
        """The seller never received it, so it cannot stay pending; unless the seller
        already reviewed it, which then stands."""
        await self.store.answer_once(card["_id"], "review", domain.closing_review_facts(rejection))
