"""Blocks in both directions and seller access (R11–R13, `im.moderation.*`)."""

from typing import Literal

from .base import Command, CommandOutcome, CreatorId, Note, SellerId
from .enums import SellerAccessStatus


class BlockCreator(Command):
    """The seller blocks the creator (R11)."""

    type: Literal["BlockCreator"] = "BlockCreator"
    seller_id: SellerId
    creator_id: CreatorId


class UnblockCreator(Command):
    type: Literal["UnblockCreator"] = "UnblockCreator"
    seller_id: SellerId
    creator_id: CreatorId


class BlockSeller(Command):
    """The creator blocks the seller (R12)."""

    type: Literal["BlockSeller"] = "BlockSeller"
    seller_id: SellerId
    creator_id: CreatorId


class UnblockSeller(Command):
    type: Literal["UnblockSeller"] = "UnblockSeller"
    seller_id: SellerId
    creator_id: CreatorId


class SetSellerAccess(Command):
    """Anything but `active` cuts the seller off from sending, receiving and reading (R13)."""

    type: Literal["SetSellerAccess"] = "SetSellerAccess"
    seller_id: SellerId
    status: SellerAccessStatus
    reason: Note | None = None


class CreatorBlocked(CommandOutcome):
    type: Literal["CreatorBlocked"] = "CreatorBlocked"
    seller_id: SellerId
    creator_id: CreatorId


class CreatorUnblocked(CommandOutcome):
    type: Literal["CreatorUnblocked"] = "CreatorUnblocked"
    seller_id: SellerId
    creator_id: CreatorId


class SellerBlocked(CommandOutcome):
    type: Literal["SellerBlocked"] = "SellerBlocked"
    seller_id: SellerId
    creator_id: CreatorId


class SellerUnblocked(CommandOutcome):
    type: Literal["SellerUnblocked"] = "SellerUnblocked"
    seller_id: SellerId
    creator_id: CreatorId


class SellerAccessChanged(CommandOutcome):
    """Every service follows this to refuse a revoked seller's reads (R13)."""

    type: Literal["SellerAccessChanged"] = "SellerAccessChanged"
    seller_id: SellerId
    status: SellerAccessStatus
    reason: Note | None = None
