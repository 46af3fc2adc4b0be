"""The inbox-projection's stored row, for seeding its database directly.

ADAPT HERE once services/inbox_projection/store.py is on main: ROW_COLLECTION
and inbox_row() must write exactly what the projection stores for one
conversation (and ROW_FORMAT must change, so cached seeds are rebuilt). Until
then they follow DESIGN §5's inbox item, plus a sort key (`last_message_at`)
and plain numbers for the range filters (R16), which any indexable projection
needs. Nothing else in the benchmark knows the row's shape."""

import random
from datetime import datetime, timedelta
from typing import Any

ROW_FORMAT = "design-5-v1"
ROW_COLLECTION = "conversations"
CATEGORIES = ("beauty", "fashion", "home", "electronics", "food", "sports", "toys", "pets", "books", "health")


def inbox_row(seller_id: str, creator_id: str, n: int, rng: random.Random, now: datetime) -> dict[str, Any]:
    """One conversation's row: folders in realistic shares (30 % unread, 25 %
    unreplied, 5 % starred, 15 % archived), log-uniform followers and GMV."""
    sent_at = now - timedelta(seconds=n * 7 + rng.randrange(7))
    archived = rng.random() < 0.15
    from_creator = rng.random() < 0.45
    unread = from_creator and not archived and rng.random() < 0.67
    followers = int(10 ** rng.uniform(2, 6.7))
    sales_gmv = round(10 ** rng.uniform(0, 5.5), 2)
    seq = 1 + rng.randrange(40)
    return {
        "_id": f"{seller_id}:{creator_id}",
        "conversation_id": f"{seller_id}:{creator_id}",
        "seller_id": seller_id,
        "creator_id": creator_id,
        "creator": {
            "nickname": f"creator {n}",
            "followers": followers,
            "main_category": CATEGORIES[rng.randrange(len(CATEGORIES))],
            "sales_gmv_30d": f"{sales_gmv:.2f}",
            "revenue_30d": f"{sales_gmv * 0.2:.2f}",
            "video_views": followers * 3,
            "live_unique_viewers": followers // 10,
            "avatar_url": None,
        },
        "sales_gmv_30d_value": sales_gmv,
        "last_message": {
            "message_id": f"m-{n:x}-{seq}",
            "seq": seq,
            "sender": "creator" if from_creator else "seller",
            "kind": "text",
            "text": "Thanks! Could you send a sample of the new serum?",
            "sent_at": sent_at,
        },
        "last_message_at": sent_at,
        "unread_count": rng.randrange(1, 6) if unread else 0,
        "unreplied": from_creator,
        "starred": rng.random() < 0.05,
        "archived": archived,
        "blocked": False,
        "blocked_by_creator": False,
    }
