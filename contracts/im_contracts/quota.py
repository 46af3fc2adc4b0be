"""The weekly outreach ledger (R3–R7, R10, `im.quota.events`)."""

from typing import Literal

from pydantic import NonNegativeInt

from .base import CommandOutcome, CreatorId, SellerId, Timestamp
from .enums import ChargeSource


class OutreachCharged(CommandOutcome):
    """A send charged one unit of outreach; `command_id` is the charged send's."""

    type: Literal["OutreachCharged"] = "OutreachCharged"
    seller_id: SellerId
    creator_id: CreatorId
    week_start: Timestamp
    """The instant the charged week began (Sunday 00:00 in the quota time zone, R10)."""
    source: ChargeSource
    used: NonNegativeInt
    """Units used from `source` after this charge."""
    limit: NonNegativeInt | None
    """The size of `source`; null means unlimited."""
