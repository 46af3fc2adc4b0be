"""One message from one side of a conversation, and its outcome (`im.send.*`)."""

from typing import Literal

from pydantic import PositiveInt, model_validator
from pydantic_core import PydanticCustomError

from .base import (
    Command,
    CommandOutcome,
    ConversationId,
    CreatorId,
    Identifier,
    SellerId,
    Text,
    Timestamp,
    conversation_id,
)
from .enums import EntryPoint, MessageKind, ReasonCode, RejectionStage, Sender


def check_card_reference(kind: MessageKind, card_id: str | None) -> None:
    """A card message points at its card; a plain text message points at none."""
    if kind is MessageKind.TEXT and card_id is not None:
        raise PydanticCustomError("card_id_forbidden", "card_id must be absent when kind is text")
    if kind is not MessageKind.TEXT and card_id is None:
        raise PydanticCustomError("card_id_required", "card_id is required when kind is {kind}", {"kind": kind.value})


class SendMessage(Command):
    """Ask to post one message. Bulk fan-out sets `bulk_id`; cards set `kind` and `card_id`."""

    type: Literal["SendMessage"] = "SendMessage"
    seller_id: SellerId
    creator_id: CreatorId
    sender: Sender
    text: Text
    entry_point: EntryPoint = EntryPoint.API
    kind: MessageKind = MessageKind.TEXT
    card_id: Identifier | None = None
    bulk_id: Identifier | None = None

    @model_validator(mode="after")
    def _card_reference(self) -> "SendMessage":
        check_card_reference(self.kind, self.card_id)
        return self


class MessageDelivered(CommandOutcome):
    """The message is stored at `seq` in its conversation; `seq` has no gaps (R1, I5)."""

    type: Literal["MessageDelivered"] = "MessageDelivered"
    message_id: Identifier
    conversation_id: ConversationId
    seq: PositiveInt
    seller_id: SellerId
    creator_id: CreatorId
    sender: Sender
    kind: MessageKind
    text: Text
    card_id: Identifier | None = None
    bulk_id: Identifier | None = None
    entry_point: EntryPoint
    sent_at: Timestamp
    """The command's `occurred_at`."""
    quota_charged: bool

    @model_validator(mode="after")
    def _consistent(self) -> "MessageDelivered":
        expected = conversation_id(self.seller_id, self.creator_id)
        if self.conversation_id != expected:
            raise PydanticCustomError(
                "conversation_id_mismatch",
                "conversation_id must be '{expected}' (seller_id:creator_id)",
                {"expected": expected},
            )
        check_card_reference(self.kind, self.card_id)
        return self


class MessageRejected(CommandOutcome):
    """The send ended without delivery; `reason` is the first rule that failed (R20).

    Only an `INVALID_COMMAND` rejection may lack `seller_id`, `creator_id` or `sender`:
    it answers a body too broken to read them from (I3).
    """

    type: Literal["MessageRejected"] = "MessageRejected"
    seller_id: SellerId | None = None
    creator_id: CreatorId | None = None
    sender: Sender | None = None
    kind: MessageKind = MessageKind.TEXT
    card_id: Identifier | None = None
    bulk_id: Identifier | None = None
    stage: RejectionStage
    reason: ReasonCode
    detail: str
    """Text shown to the sender."""
    rule_id: Identifier | None = None
    """The content rule that refused the text (`CONTENT_REJECTED` only)."""

    @model_validator(mode="after")
    def _parties_known(self) -> "MessageRejected":
        if self.reason is ReasonCode.INVALID_COMMAND:
            return self  # carries whatever could be read from a broken body
        missing = [name for name in ("seller_id", "creator_id", "sender") if getattr(self, name) is None]
        if missing:
            raise PydanticCustomError(
                "parties_required",
                "{fields}: required unless reason is INVALID_COMMAND",
                {"fields": ", ".join(missing)},
            )
        check_card_reference(self.kind, self.card_id)
        return self
