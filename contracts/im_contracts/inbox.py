"""Seller-side inbox organisation (R15, R17, `im.inbox.commands`)."""

from typing import Literal

from pydantic import PositiveInt

from .base import Command, CreatorId, SellerId


class StarConversation(Command):
    type: Literal["StarConversation"] = "StarConversation"
    seller_id: SellerId
    creator_id: CreatorId


class UnstarConversation(Command):
    type: Literal["UnstarConversation"] = "UnstarConversation"
    seller_id: SellerId
    creator_id: CreatorId


class ArchiveConversation(Command):
    type: Literal["ArchiveConversation"] = "ArchiveConversation"
    seller_id: SellerId
    creator_id: CreatorId


class UnarchiveConversation(Command):
    type: Literal["UnarchiveConversation"] = "UnarchiveConversation"
    seller_id: SellerId
    creator_id: CreatorId


class MarkConversationRead(Command):
    """Marks creator messages read up to `up_to_seq`, or all of them when it is absent (R17)."""

    type: Literal["MarkConversationRead"] = "MarkConversationRead"
    seller_id: SellerId
    creator_id: CreatorId
    up_to_seq: PositiveInt | None = None
