"""The inbox-projection's stored row, for seeding its database directly.

Rows are built through the projection's own domain model and stored form
(`services.inbox_projection.domain`: Conversation … to_document), so a seed
cannot drift from what the projection writes. ADAPT HERE if that module's
names change; nothing else in the benchmark knows the row's shape. The seed
cache key (`row_format`) follows the source of the domain and layout modules,
so a changed stored form is seeded anew."""

import hashlib
import inspect
import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from im_contracts import MessageKind, Sender

CATEGORIES = ("beauty", "fashion", "home", "electronics", "food", "sports", "toys", "pets", "books", "health")


class RowFormatUnknown(RuntimeError):
    """This build's inbox-projection has no domain model to build rows with."""


def _domain() -> Any:
    try:
        from services.inbox_projection import domain
    except ImportError as exc:
        raise RowFormatUnknown(f"services.inbox_projection.domain is missing ({exc}): adapt bench/inbox_rows.py") from exc
    needed = ("Conversation", "LastMessage", "UnreadMessage", "Flag", "Stamp", "CreatorProfile", "to_document")
    if missing := [name for name in needed if not hasattr(domain, name)]:
        raise RowFormatUnknown(f"services.inbox_projection.domain lacks {', '.join(missing)}: adapt bench/inbox_rows.py")
    return domain


def row_format() -> str:
    """Changes whenever the projection's stored form (domain) or serving layout
    does (layout; how pages read it, reads.py, is not part of it)."""
    from services.inbox_projection import layout

    return hashlib.sha256((inspect.getsource(_domain()) + inspect.getsource(layout)).encode()).hexdigest()[:10]


def inbox_row(seller_id: str, creator_id: str, n: int, rng: random.Random, now: datetime) -> dict[str, Any]:
    """One conversation's stored row: folders in realistic shares (about 30 %
    unread, 45 % unreplied, 5 % starred, 15 % archived), log-uniform followers
    and sales GMV, newest activity first by ``n``."""
    d = _domain()
    at = now - timedelta(seconds=n * 7 + rng.randrange(7))
    seq = 2 + rng.randrange(40)
    from_creator = rng.random() < 0.45
    archived = rng.random() < 0.15
    unread_count = rng.randrange(1, 4) if from_creator and not archived and rng.random() < 0.67 else 0
    last_creator_at = at if from_creator else at - timedelta(hours=1)
    stamp = d.Stamp(now, "bench")
    followers = int(10 ** rng.uniform(2, 6.7))
    sales = Decimal(f"{10 ** rng.uniform(0, 5.5):.2f}")
    row = d.Conversation(
        seller_id=seller_id,
        creator_id=creator_id,
        last_message=d.LastMessage(
            message_id=f"bench-{n:x}-{seq}", seq=seq, sender=Sender.CREATOR if from_creator else Sender.SELLER, kind=MessageKind.TEXT,
            text="Thanks! Could you send a sample of the new serum?", sent_at=at,
        ),
        last_activity=at,
        last_creator_message_at=last_creator_at,
        unread=tuple(d.UnreadMessage(seq - k, at - timedelta(seconds=k)) for k in range(unread_count)),
        star=d.Flag(rng.random() < 0.05, stamp),
        archive=d.Flag(True, d.Stamp(at + timedelta(seconds=1), "bench")) if archived else None,
        profile=d.CreatorProfile(
            nickname=f"creator {n}", followers=followers, main_category=CATEGORIES[rng.randrange(len(CATEGORIES))],
            sales_gmv_30d=sales, revenue_30d=(sales / 5).quantize(Decimal("0.01")), video_views=followers * 3,
            live_unique_viewers=followers // 10, avatar_url=None, stamp=stamp,
        ),
    )
    return d.to_document(row)
