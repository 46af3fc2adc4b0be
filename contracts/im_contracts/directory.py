"""Facts about sellers and creators reported by upstream systems (`im.directory.events`)."""

from typing import Literal

from pydantic import NonNegativeInt

from .base import CreatorId, Event, Label, Money, SellerId, Url
from .enums import ConnectionVia


class SellerGmvUpdated(Event):
    """The seller's latest 30-day affiliate GMV; sets its tier (R6, R7)."""

    type: Literal["SellerGmvUpdated"] = "SellerGmvUpdated"
    seller_id: SellerId
    gmv_30d: Money


class CreatorProfileUpdated(Event):
    """The creator's latest profile; feeds the follower cap (R8) and inbox filters (R16)."""

    type: Literal["CreatorProfileUpdated"] = "CreatorProfileUpdated"
    creator_id: CreatorId
    nickname: Label
    followers: NonNegativeInt
    main_category: Label
    sales_gmv_30d: Money
    revenue_30d: Money | None = None
    video_views: NonNegativeInt | None = None
    live_unique_viewers: NonNegativeInt | None = None
    avatar_url: Url | None = None


class CreatorConnected(Event):
    """The creator is connected to the seller for good; outreach to it is never charged (R5)."""

    type: Literal["CreatorConnected"] = "CreatorConnected"
    seller_id: SellerId
    creator_id: CreatorId
    via: ConnectionVia
