"""Policies, sends and decoded decisions for quota's unit tests."""

import itertools
from datetime import datetime
from typing import Any

from im_contracts import MessageKind, SendMessage, parse

from services.common.idempotency import Decision
from services.quota.domain import QuotaPolicy

TIERS = [
    {"name": "T0", "gmv_30d_up_to": 0, "weekly_limit": 0, "starter_pack": True, "max_creator_followers": 20_000},
    {"name": "T1", "gmv_30d_up_to": 2_000, "weekly_limit": 2, "max_creator_followers": 20_000},
    {"name": "T2", "gmv_30d_up_to": 50_000, "weekly_limit": 4, "max_creator_followers": None},
    {"name": "T3", "gmv_30d_up_to": None, "weekly_limit": None, "max_creator_followers": None},
]
SMALL = QuotaPolicy.model_validate({"starter_pack_size": 3, "reply_cap": 5, "tiers": TIERS})
"""DESIGN's tiers with small numbers: starter pack 3, T1 2 a week, T2 4 a week."""

_ids = itertools.count()


def send(seller: str, creator: str, at: datetime, *, sender: str = "seller", kind: MessageKind = MessageKind.TEXT, **extra: Any) -> SendMessage:
    card = {"card_id": f"card-{next(_ids)}"} if kind is not MessageKind.TEXT else {}
    return SendMessage(
        command_id=f"cmd-{next(_ids)}", occurred_at=at, seller_id=seller, creator_id=creator,
        sender=sender, text="hello", kind=kind, **card, **extra,
    )


def published(decision: Decision) -> dict[str, Any]:
    """The decision's records by type name (each decision publishes at most one of each)."""
    return {(m := parse(o.topic, o.value)).type: m for o in decision.outgoing}
