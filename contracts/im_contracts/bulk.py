"""One seller message to many creators, judged one creator at a time (R19)."""

from collections import Counter
from typing import Annotated, Literal

from pydantic import Field, NonNegativeInt, model_validator
from pydantic_core import PydanticCustomError

from .base import MAX_ID_LENGTH, Command, CommandOutcome, CreatorId, SellerId, Text
from .enums import EntryPoint, ReasonCode, Sender
from .send import SendMessage

MAX_BULK_CREATORS = 500


def fan_out_command_id(bulk_command_id: str, creator_id: str) -> str:
    """The command id of one creator's share of a bulk send: stable, so fan-out is idempotent."""
    return f"{bulk_command_id}:{creator_id}"


class BulkSendMessage(Command):
    """Messages up to 500 distinct creators; `command_id` becomes every fan-out's `bulk_id`."""

    type: Literal["BulkSendMessage"] = "BulkSendMessage"
    seller_id: SellerId
    creator_ids: Annotated[tuple[CreatorId, ...], Field(min_length=1, max_length=MAX_BULK_CREATORS)]
    text: Text

    @model_validator(mode="after")
    def _fan_out_is_valid(self) -> "BulkSendMessage":
        duplicates = sorted(creator_id for creator_id, count in Counter(self.creator_ids).items() if count > 1)
        if duplicates:
            raise PydanticCustomError(
                "duplicate_creator_ids",
                "creator_ids must be distinct; repeated: {duplicates}",
                {"duplicates": ", ".join(duplicates)},
            )
        longest = max(len(fan_out_command_id(self.command_id, creator_id)) for creator_id in self.creator_ids)
        if longest > MAX_ID_LENGTH:
            raise PydanticCustomError(
                "command_id_too_long_for_fan_out",
                "command_id too long for bulk fan-out: '<command_id>:<creator_id>' is {length} characters, limit 128",
                {"length": longest},
            )
        return self

    def fan_out(self) -> tuple[SendMessage, ...]:
        """The per-creator sends this command stands for, in `creator_ids` order."""
        return tuple(
            SendMessage(
                command_id=fan_out_command_id(self.command_id, creator_id),
                occurred_at=self.occurred_at,
                seller_id=self.seller_id,
                creator_id=creator_id,
                sender=Sender.SELLER,
                text=self.text,
                entry_point=EntryPoint.BULK,
                bulk_id=self.command_id,
            )
            for creator_id in self.creator_ids
        )


class BulkSendCompleted(CommandOutcome):
    """Every creator of a bulk send has an outcome; counts add up to `total`."""

    type: Literal["BulkSendCompleted"] = "BulkSendCompleted"
    seller_id: SellerId
    total: NonNegativeInt
    delivered: NonNegativeInt
    rejected: NonNegativeInt
    rejected_by_reason: dict[ReasonCode, NonNegativeInt]

    @model_validator(mode="after")
    def _counts_add_up(self) -> "BulkSendCompleted":
        if self.delivered + self.rejected != self.total:
            raise PydanticCustomError("counts_mismatch", "delivered + rejected must equal total")
        if sum(self.rejected_by_reason.values()) != self.rejected:
            raise PydanticCustomError("counts_mismatch", "rejected_by_reason counts must add up to rejected")
        return self
