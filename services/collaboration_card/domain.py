"""Collaboration-card rules without I/O (R18).

A card is stored once per command (its id derives from the command_id), then sent as a
`SendMessage` through the whole pipeline, so blocks, access and quota judge it like text;
the message's outcome becomes the card's.

Each fact about a card has exactly one writer: the outcome of each of its messages
(`deliveries.<kind>`), the creator's response, the seller's review. Responses and reviews
are won by the first conditional update that sets them, and the card's status is derived
from the facts, so no two handlers race on one field.
"""

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from im_contracts import (
    CardDelivered,
    CardRejected,
    CollaborationPlan,
    EntryPoint,
    MessageDelivered,
    MessageKind,
    MessageRejected,
    ProductSnapshot,
    RequestSample,
    RespondToTargetCollaboration,
    ReviewSampleRequest,
    SampleDecision,
    SampleRequestApproved,
    SampleRequested,
    SampleRequestRejected,
    SampleReviewFailed,
    SampleReviewFailure,
    Sender,
    SendMessage,
    SendProductCard,
    SendTargetCollaboration,
    TargetCollaborationAccepted,
    TargetCollaborationDeclined,
    TargetCollaborationResponse,
    new_event_id,
    utcnow,
)
from im_contracts.base import MAX_ID_LENGTH, MAX_TEXT_LENGTH

CardCommand = SendProductCard | SendTargetCollaboration | RequestSample
"""A command that creates a card."""

CARD_ID_NAMESPACE = uuid.UUID("5b0d6c1e-3f0a-4c57-9f41-2a7e8c3d9b10")
CARD_MESSAGE = "card"
REVIEW_MESSAGE = "review"


# --- identities ----------------------------------------------------------------


def card_id_for(command_id: str) -> str:
    """The card a command creates; a redelivered command names the same card."""
    return f"card-{uuid.uuid5(CARD_ID_NAMESPACE, command_id).hex}"


def derived_command_id(command_id: str, purpose: str) -> str:
    """The id of a command issued on behalf of `command_id`, within the 128-char limit."""
    candidate = f"{command_id}:{purpose}"
    if len(candidate) <= MAX_ID_LENGTH:
        return candidate
    return f"{hashlib.sha256(command_id.encode()).hexdigest()}:{purpose}"


def outcome_key(message_command_id: str) -> str:
    """Decision key for following one card message's outcome (apart from command ids)."""
    return f"card-message-outcome:{message_command_id}"


@dataclass(frozen=True, slots=True)
class Stamp:
    """Identity and time of an event about to be decided."""

    event_id: str = field(default_factory=new_event_id)
    at: datetime = field(default_factory=utcnow)


# --- readable text of a card ---------------------------------------------------


def percent(rate: Decimal) -> str:
    """0.15 → "15%", 0.125 → "12.5%"."""
    return f"{format((rate * 100).normalize(), 'f')}%"


def fit_text(text: str) -> str:
    """Text within the 2,000-character message limit (R14), clipped with an ellipsis."""
    text = text.strip()
    if len(text) <= MAX_TEXT_LENGTH:
        return text
    return text[: MAX_TEXT_LENGTH - 1].rstrip() + "…"


def product_card_text(product: ProductSnapshot) -> str:
    price = product.model_dump(mode="json")["price"]
    return fit_text(
        f"Open collaboration: {product.title}\n"
        f"Price: {price} {product.currency} · Commission: {percent(product.commission_rate)}\n"
        f"Product ID: {product.product_id}"
    )


def target_collaboration_text(plan: CollaborationPlan) -> str:
    lines = [
        f"Target collaboration invitation: {plan.name}",
        f"Commission: {percent(plan.commission_rate)}",
        f"Products: {', '.join(plan.product_ids)}",
    ]
    if plan.valid_until is not None:
        lines.append(f"Valid until: {plan.valid_until.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
    return fit_text("\n".join(lines))


def sample_label(sample: dict[str, Any]) -> str:
    return sample.get("product_title") or f"product {sample['product_id']}"


def sample_request_text(sample: dict[str, Any]) -> str:
    lines = [f"Sample request: {sample['quantity']} × {sample_label(sample)} (product {sample['product_id']})"]
    if sample.get("note"):
        lines.append(f"Note: {sample['note']}")
    return fit_text("\n".join(lines))


def sample_review_text(sample: dict[str, Any], decision: SampleDecision, reason: str | None) -> str:
    if decision is SampleDecision.APPROVE:
        lines = [f"Sample request approved: {sample['quantity']} × {sample_label(sample)}"]
    else:
        lines = [f"Sample request declined: {sample_label(sample)}"]
    if reason:
        lines.append(f"Reason: {reason}")
    return fit_text("\n".join(lines))


# --- new cards and their messages ----------------------------------------------


def new_card(command: CardCommand) -> dict[str, Any]:
    """The stored card; built from the command alone, so a redelivery builds the same one."""
    card: dict[str, Any] = {
        "_id": card_id_for(command.command_id),
        "seller_id": command.seller_id,
        "creator_id": command.creator_id,
        "command_id": command.command_id,
        "created_at": command.occurred_at,
        "deliveries": {},
        "response": None,
        "review": None,
    }
    match command:
        case SendProductCard():
            card.update(kind=str(MessageKind.PRODUCT_CARD), product=command.product.model_dump(mode="json"))
        case SendTargetCollaboration():
            card.update(kind=str(MessageKind.TARGET_COLLABORATION), plan=command.plan.model_dump(mode="json"))
        case RequestSample():
            sample = command.model_dump(mode="json", include={"product_id", "product_title", "quantity", "note"})
            card.update(kind=str(MessageKind.SAMPLE_REQUEST), sample=sample)
    return card


def card_message(command: CardCommand, card: dict[str, Any]) -> SendMessage:
    """The card as a message: seller outreach for product and target-collaboration cards,
    a creator message for a sample request (R2, R18)."""
    match command:
        case SendProductCard():
            sender, entry_point, text = Sender.SELLER, EntryPoint.API, product_card_text(command.product)
        case SendTargetCollaboration():
            sender, entry_point = Sender.SELLER, EntryPoint.TARGET_COLLABORATION
            text = target_collaboration_text(command.plan)
        case RequestSample():
            sender, entry_point, text = Sender.CREATOR, EntryPoint.SAMPLE_REQUEST, sample_request_text(card["sample"])
    return SendMessage(
        command_id=derived_command_id(command.command_id, CARD_MESSAGE),
        occurred_at=command.occurred_at,
        seller_id=command.seller_id,
        creator_id=command.creator_id,
        sender=sender,
        text=text,
        entry_point=entry_point,
        kind=MessageKind(card["kind"]),
        card_id=card["_id"],
    )


def review_message(card: dict[str, Any], review: ReviewSampleRequest) -> SendMessage:
    """The seller's decision posted into the conversation: a reply, never charged or capped (R18)."""
    return SendMessage(
        command_id=derived_command_id(review.command_id, REVIEW_MESSAGE),
        occurred_at=review.occurred_at,
        seller_id=card["seller_id"],
        creator_id=card["creator_id"],
        sender=Sender.SELLER,
        text=sample_review_text(card["sample"], review.decision, review.reason),
        entry_point=EntryPoint.SAMPLE_REQUEST,
        kind=MessageKind.SAMPLE_REVIEW,
        card_id=card["_id"],
    )


def sample_requested(card: dict[str, Any], stamp: Stamp) -> SampleRequested:
    return SampleRequested(
        event_id=stamp.event_id,
        occurred_at=stamp.at,
        command_id=card["command_id"],
        sample_request_id=card["_id"],
        seller_id=card["seller_id"],
        creator_id=card["creator_id"],
        **card["sample"],
    )


# --- message outcomes ----------------------------------------------------------

MessageOutcome = MessageDelivered | MessageRejected


class DeliveryOutcome(StrEnum):
    DELIVERED = "delivered"
    REJECTED = "rejected"


def is_card_message(event: MessageOutcome) -> bool:
    return event.kind is not MessageKind.TEXT and event.card_id is not None


def card_kind_of(message_kind: MessageKind) -> MessageKind:
    """A sample review is a message about the sample-request card."""
    return MessageKind.SAMPLE_REQUEST if message_kind is MessageKind.SAMPLE_REVIEW else message_kind


def message_origin(card: dict[str, Any], message_kind: MessageKind) -> str | None:
    """The command that made this card send a message of `message_kind`, if it did."""
    if card["kind"] != card_kind_of(message_kind):
        return None
    if message_kind is MessageKind.SAMPLE_REVIEW:
        review = card.get("review")
        return review["command_id"] if review and review["by"] == ReviewBy.SELLER else None
    return card["command_id"]


def is_own_message(card: dict[str, Any], event: MessageOutcome) -> bool:
    """True when `event` ends a message this card sent (not a stray or forged card_id)."""
    origin = message_origin(card, event.kind)
    purpose = REVIEW_MESSAGE if event.kind is MessageKind.SAMPLE_REVIEW else CARD_MESSAGE
    return origin is not None and derived_command_id(origin, purpose) == event.command_id


def delivery_facts(event: MessageOutcome) -> dict[str, Any]:
    if isinstance(event, MessageDelivered):
        return {
            "outcome": str(DeliveryOutcome.DELIVERED),
            "command_id": event.command_id,
            "message_id": event.message_id,
            "seq": event.seq,
            "at": event.occurred_at,
        }
    return {
        "outcome": str(DeliveryOutcome.REJECTED),
        "command_id": event.command_id,
        "reason": str(event.reason),
        "detail": event.detail,
        "at": event.occurred_at,
    }


def card_outcome_event(card: dict[str, Any], event: MessageOutcome, stamp: Stamp) -> CardDelivered | CardRejected:
    """CardDelivered or CardRejected, answering the command that made the card send it."""
    common = {
        "event_id": stamp.event_id,
        "occurred_at": stamp.at,
        "command_id": message_origin(card, event.kind),
        "card_id": card["_id"],
        "kind": event.kind,
        "seller_id": card["seller_id"],
        "creator_id": card["creator_id"],
    }
    if isinstance(event, MessageDelivered):
        return CardDelivered(**common, message_id=event.message_id)
    return CardRejected(**common, reason=event.reason, detail=event.detail)


def delivery(card: dict[str, Any], message_kind: MessageKind) -> dict[str, Any] | None:
    return (card.get("deliveries") or {}).get(str(message_kind))


def delivery_outcome(card: dict[str, Any], message_kind: MessageKind) -> DeliveryOutcome | None:
    facts = delivery(card, message_kind)
    return DeliveryOutcome(facts["outcome"]) if facts else None


# --- the creator's response to a target collaboration --------------------------


class ResponseRefusal(StrEnum):
    """Why a RespondToTargetCollaboration changes nothing (logged and counted; no public event)."""

    UNKNOWN_CARD = "UNKNOWN_CARD"
    NOT_ADDRESSEE = "NOT_ADDRESSEE"
    NOT_DELIVERED = "NOT_DELIVERED"
    ALREADY_RESPONDED = "ALREADY_RESPONDED"


def response_refusal(card: dict[str, Any] | None, command: RespondToTargetCollaboration) -> ResponseRefusal | None:
    """Only the addressed creator answers a delivered target-collaboration card of that seller.
    Answering once is decided by the store (the first answer stands), not here."""
    if card is None or card["kind"] != MessageKind.TARGET_COLLABORATION or card["seller_id"] != command.seller_id:
        return ResponseRefusal.UNKNOWN_CARD
    if card["creator_id"] != command.creator_id:
        return ResponseRefusal.NOT_ADDRESSEE
    if delivery_outcome(card, MessageKind.TARGET_COLLABORATION) is not DeliveryOutcome.DELIVERED:
        return ResponseRefusal.NOT_DELIVERED
    return None


def response_facts(command: RespondToTargetCollaboration) -> dict[str, Any]:
    return {"response": str(command.response), "command_id": command.command_id, "responded_at": command.occurred_at}


def response_event(
    card: dict[str, Any], command: RespondToTargetCollaboration, stamp: Stamp
) -> TargetCollaborationAccepted | TargetCollaborationDeclined:
    model = (
        TargetCollaborationAccepted
        if command.response is TargetCollaborationResponse.ACCEPT
        else TargetCollaborationDeclined
    )
    return model(
        event_id=stamp.event_id,
        occurred_at=stamp.at,
        command_id=command.command_id,
        card_id=card["_id"],
        seller_id=card["seller_id"],
        creator_id=card["creator_id"],
    )


# --- the seller's review of a sample request -----------------------------------


class ReviewBy(StrEnum):
    """Who closed a sample request: its seller, or the pipeline refusing the sample card."""

    SELLER = "seller"
    DELIVERY = "delivery"


def review_refusal(card: dict[str, Any] | None, command: ReviewSampleRequest) -> SampleReviewFailure | None:
    """Unknown or not the reviewer's; reviewing once is decided by the store (the first review stands)."""
    if card is None or card["kind"] != MessageKind.SAMPLE_REQUEST:
        return SampleReviewFailure.NOT_FOUND
    if card["seller_id"] != command.seller_id:
        return SampleReviewFailure.NOT_OWNER
    return None


def seller_review_facts(command: ReviewSampleRequest) -> dict[str, Any]:
    return {
        "decision": str(command.decision),
        "reason": command.reason,
        "command_id": command.command_id,
        "decided_at": command.occurred_at,
        "by": str(ReviewBy.SELLER),
    }


def closing_review_facts(rejection: MessageRejected) -> dict[str, Any]:
    """A sample request whose card the pipeline refused is closed as rejected: the seller
    never received it, so it must not wait for a review."""
    return {
        "decision": str(SampleDecision.REJECT),
        "reason": str(rejection.reason),
        "command_id": rejection.command_id,
        "decided_at": rejection.occurred_at,
        "by": str(ReviewBy.DELIVERY),
    }


def review_event(
    card: dict[str, Any], command: ReviewSampleRequest, stamp: Stamp
) -> SampleRequestApproved | SampleRequestRejected:
    common = {
        "event_id": stamp.event_id,
        "occurred_at": stamp.at,
        "command_id": command.command_id,
        "sample_request_id": card["_id"],
        "seller_id": card["seller_id"],
        "creator_id": card["creator_id"],
    }
    if command.decision is SampleDecision.APPROVE:
        return SampleRequestApproved(**common)
    return SampleRequestRejected(**common, reason=command.reason)


def review_failed(
    card: dict[str, Any] | None, command: ReviewSampleRequest, failure: SampleReviewFailure, stamp: Stamp
) -> SampleReviewFailed:
    """The creator is named only to the owning seller (ALREADY_REVIEWED), never to another one."""
    creator_id = card["creator_id"] if card is not None and failure is SampleReviewFailure.ALREADY_REVIEWED else None
    return SampleReviewFailed(
        event_id=stamp.event_id,
        occurred_at=stamp.at,
        command_id=command.command_id,
        sample_request_id=command.sample_request_id,
        seller_id=command.seller_id,
        creator_id=creator_id,
        reason=failure,
    )


# --- status and the read model -------------------------------------------------


class CardStatus(StrEnum):
    """pending → delivered | rejected for outreach cards, then accepted | declined for a target
    collaboration; pending → approved | rejected for a sample request (SampleRequestStatus)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    REJECTED = "rejected"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    APPROVED = "approved"


def card_status(card: dict[str, Any]) -> CardStatus:
    if card["kind"] == MessageKind.SAMPLE_REQUEST:
        review = card.get("review")
        if review is None:
            return CardStatus.PENDING
        return CardStatus.APPROVED if review["decision"] == SampleDecision.APPROVE else CardStatus.REJECTED
    outcome = delivery_outcome(card, MessageKind(card["kind"]))
    if outcome is None:
        return CardStatus.PENDING
    if outcome is DeliveryOutcome.REJECTED:
        return CardStatus.REJECTED
    response = card.get("response")
    if response is None:
        return CardStatus.DELIVERED
    return CardStatus.ACCEPTED if response["response"] == TargetCollaborationResponse.ACCEPT else CardStatus.DECLINED


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _message_fields(facts: dict[str, Any] | None) -> dict[str, Any]:
    """message_id once delivered; reason and detail once refused by the pipeline."""
    if facts is None:
        return {"message_id": None, "reason": None, "detail": None}
    return {"message_id": facts.get("message_id"), "reason": facts.get("reason"), "detail": facts.get("detail")}


def card_view(card: dict[str, Any]) -> dict[str, Any]:
    """The card as the read API shows it."""
    kind = MessageKind(card["kind"])
    view: dict[str, Any] = {
        "card_id": card["_id"],
        "kind": str(kind),
        "seller_id": card["seller_id"],
        "creator_id": card["creator_id"],
        "status": str(card_status(card)),
        "created_at": _iso(card["created_at"]),
        **_message_fields(delivery(card, kind)),
    }
    if kind is MessageKind.PRODUCT_CARD:
        view["product"] = card["product"]
    elif kind is MessageKind.TARGET_COLLABORATION:
        response = card.get("response")
        view["plan"] = card["plan"]
        view["response"] = response["response"] if response else None
        view["responded_at"] = _iso(response["responded_at"]) if response else None
    else:
        view.update(sample_request_id=card["_id"], **card["sample"], decision=_decision_view(card))
    return view


def _decision_view(card: dict[str, Any]) -> dict[str, Any] | None:
    review = card.get("review")
    if review is None or review["by"] != ReviewBy.SELLER:
        return None
    message = _message_fields(delivery(card, MessageKind.SAMPLE_REVIEW))
    return {
        "decision": review["decision"],
        "reason": review["reason"],
        "decided_at": _iso(review["decided_at"]),
        "message_id": message["message_id"],
        "message_rejected_reason": message["reason"],
    }
