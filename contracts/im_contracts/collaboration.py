"""Product cards, target collaborations and sample requests (R18, `im.collaboration.*`)."""

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from .base import (
    Command,
    CommandOutcome,
    ContractValue,
    CreatorId,
    Identifier,
    Label,
    Money,
    Note,
    Rate,
    SellerId,
    Timestamp,
    Url,
)
from .enums import MessageKind, ReasonCode, SampleDecision, SampleReviewFailure, TargetCollaborationResponse

MAX_SAMPLE_QUANTITY = 5

Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$"), Field(description="ISO 4217 code, e.g. USD")]


class ProductSnapshot(ContractValue):
    """The product as it was when the card was sent; later catalogue edits do not change the card."""

    product_id: Identifier
    title: Label
    price: Money
    currency: Currency
    commission_rate: Rate
    image_url: Url | None = None


class CollaborationPlan(ContractValue):
    plan_id: Identifier
    name: Label
    commission_rate: Rate
    product_ids: Annotated[tuple[Identifier, ...], Field(min_length=1)]
    valid_until: Timestamp | None = None


# --- commands ----------------------------------------------------------------


class SendProductCard(Command):
    """Seller outreach through the send pipeline; quota and caps apply (R18)."""

    type: Literal["SendProductCard"] = "SendProductCard"
    seller_id: SellerId
    creator_id: CreatorId
    product: ProductSnapshot


class SendTargetCollaboration(Command):
    """Seller outreach through the send pipeline; quota and caps apply (R18)."""

    type: Literal["SendTargetCollaboration"] = "SendTargetCollaboration"
    seller_id: SellerId
    creator_id: CreatorId
    plan: CollaborationPlan


class RespondToTargetCollaboration(Command):
    """The creator answers a target-collaboration card; accepting connects them (R5)."""

    type: Literal["RespondToTargetCollaboration"] = "RespondToTargetCollaboration"
    creator_id: CreatorId
    seller_id: SellerId
    card_id: Identifier
    response: TargetCollaborationResponse


class RequestSample(Command):
    type: Literal["RequestSample"] = "RequestSample"
    creator_id: CreatorId
    seller_id: SellerId
    product_id: Identifier
    product_title: Label | None = None
    quantity: Annotated[int, Field(ge=1, le=MAX_SAMPLE_QUANTITY)] = 1
    note: Note | None = None


class ReviewSampleRequest(Command):
    """The owning seller decides once; the decision is a reply, never charged or capped (R18)."""

    type: Literal["ReviewSampleRequest"] = "ReviewSampleRequest"
    seller_id: SellerId
    sample_request_id: Identifier
    decision: SampleDecision
    reason: Note | None = None


# --- events ------------------------------------------------------------------


def _require_card_kind(kind: MessageKind) -> None:
    if kind is MessageKind.TEXT:
        raise PydanticCustomError("card_kind", "kind must be a card kind, not text")


class CardDelivered(CommandOutcome):
    type: Literal["CardDelivered"] = "CardDelivered"
    card_id: Identifier
    kind: MessageKind
    seller_id: SellerId
    creator_id: CreatorId
    message_id: Identifier

    @model_validator(mode="after")
    def _card_kind(self) -> "CardDelivered":
        _require_card_kind(self.kind)
        return self


class CardRejected(CommandOutcome):
    type: Literal["CardRejected"] = "CardRejected"
    card_id: Identifier
    kind: MessageKind
    seller_id: SellerId
    creator_id: CreatorId
    reason: ReasonCode
    detail: str | None = None
    """The `MessageRejected.detail` shown to the sender."""

    @model_validator(mode="after")
    def _card_kind(self) -> "CardRejected":
        _require_card_kind(self.kind)
        return self


class TargetCollaborationAccepted(CommandOutcome):
    type: Literal["TargetCollaborationAccepted"] = "TargetCollaborationAccepted"
    card_id: Identifier
    seller_id: SellerId
    creator_id: CreatorId


class TargetCollaborationDeclined(CommandOutcome):
    type: Literal["TargetCollaborationDeclined"] = "TargetCollaborationDeclined"
    card_id: Identifier
    seller_id: SellerId
    creator_id: CreatorId


class SampleRequested(CommandOutcome):
    """A pending sample request; `sample_request_id` is its card id."""

    type: Literal["SampleRequested"] = "SampleRequested"
    sample_request_id: Identifier
    seller_id: SellerId
    creator_id: CreatorId
    product_id: Identifier
    product_title: Label | None = None
    quantity: Annotated[int, Field(ge=1, le=MAX_SAMPLE_QUANTITY)]
    note: Note | None = None


class SampleRequestApproved(CommandOutcome):
    type: Literal["SampleRequestApproved"] = "SampleRequestApproved"
    sample_request_id: Identifier
    seller_id: SellerId
    creator_id: CreatorId


class SampleRequestRejected(CommandOutcome):
    type: Literal["SampleRequestRejected"] = "SampleRequestRejected"
    sample_request_id: Identifier
    seller_id: SellerId
    creator_id: CreatorId
    reason: Note | None = None
    """The seller's own words, if any."""


class SampleReviewFailed(CommandOutcome):
    """The review was refused; `creator_id` is absent when the request is unknown."""

    type: Literal["SampleReviewFailed"] = "SampleReviewFailed"
    sample_request_id: Identifier
    seller_id: SellerId
    creator_id: CreatorId | None = None
    reason: SampleReviewFailure
