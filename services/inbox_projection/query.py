"""Inbox reads without I/O: folder and filter queries, sort order, cursors (R15, R16).

Order: newest first by `last_activity` (the delivery time of the row's latest
message, in microseconds, which only ever grows), then `conversation_id`,
descending — a total order, so a page boundary is exact.

Cursor: the sort key of the last row of a page, base64url JSON. The next page
holds the rows strictly after it in that order (keyset paging). Guarantee while
new messages arrive during a pass through the pages:
- a row whose position did not change is returned exactly once;
- no row is ever returned twice: new activity only moves a row up, above the
  cursor, so a row already returned can never come back below it;
- a row that gets new activity before the pass reached it moves to the top,
  ahead of the pass's first page; the pass does not return it (it is not
  repeated either) and a fresh first page shows it first. Rows that join a
  folder or filter without new activity (a star, a profile update) are
  returned iff they sit after the cursor.
"""

import base64
import binascii
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pymongo import DESCENDING

from im_contracts import InboxFolder

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
SORT = [("last_activity", DESCENDING), ("_id", DESCENDING)]


class InvalidInboxQuery(ValueError):
    """A query the API answers with 422."""


@dataclass(frozen=True)
class SortKey:
    last_activity: int
    """Microseconds since the epoch, as stored."""
    conversation_id: str

    @classmethod
    def of(cls, row: dict[str, Any]) -> "SortKey":
        return cls(row["last_activity"], row["_id"])

    def encode(self) -> str:
        raw = json.dumps({"t": self.last_activity, "c": self.conversation_id}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> "SortKey":
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            value = json.loads(raw)
            last_activity, conversation = value["t"], value["c"]
            if type(last_activity) is not int or not isinstance(conversation, str):
                raise TypeError("cursor fields have the wrong types")
            if not 0 <= last_activity < 2**63:
                raise ValueError("cursor time out of range")
            return cls(last_activity, conversation)
        except (binascii.Error, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            raise InvalidInboxQuery("cursor is not one this API returned") from exc

    def after(self) -> dict[str, Any]:
        """Rows strictly after this key in the inbox order."""
        return {
            "$or": [
                {"last_activity": {"$lt": self.last_activity}},
                {"last_activity": self.last_activity, "_id": {"$lt": self.conversation_id}},
            ]
        }


def _range(field: str, low: Any, high: Any) -> dict[str, Any]:
    if low is not None and high is not None and low > high:
        raise InvalidInboxQuery(f"min_{field} must not exceed max_{field}")
    return {op: value for op, value in (("$gte", low), ("$lte", high)) if value is not None}


@dataclass(frozen=True)
class InboxFilters:
    """R16: follower range, main categories (any of), 30-day sales GMV range; all optional."""

    min_followers: int | None = None
    max_followers: int | None = None
    categories: tuple[str, ...] = ()
    min_sales_gmv: Decimal | None = None
    max_sales_gmv: Decimal | None = None

    def to_query(self) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if followers := _range("followers", self.min_followers, self.max_followers):
            query["followers"] = followers
        gmv = _range(
            "sales_gmv",
            None if self.min_sales_gmv is None else float(self.min_sales_gmv),
            None if self.max_sales_gmv is None else float(self.max_sales_gmv),
        )
        if gmv:
            query["sales_gmv_30d"] = gmv
        if self.categories:
            query["main_category"] = {"$in": sorted(set(self.categories))}
        return query


def folder_query(seller_id: str, folder: InboxFolder) -> dict[str, Any]:
    return {"seller_id": seller_id, "folders": folder.value}


def inbox_query(seller_id: str, folder: InboxFolder, filters: InboxFilters, after: SortKey | None = None) -> dict[str, Any]:
    query = {**folder_query(seller_id, folder), **filters.to_query()}
    if after is not None:
        query.update(after.after())
    return query


def counts_pipeline(seller_id: str) -> list[dict[str, Any]]:
    """Rows per folder of a seller in one pass (one scan on FerretDB v1 instead
    of one per folder; the `seller_id` prefix of `inbox_by_folder` on MongoDB)."""
    return [
        {"$match": {"seller_id": seller_id}},
        {"$project": {"folders": 1}},
        {"$unwind": "$folders"},
        {"$group": {"_id": "$folders", "rows": {"$sum": 1}}},
    ]


def counts_of(groups: list[dict[str, Any]]) -> dict[str, int]:
    """Every folder's count, zero where the seller has no row."""
    found = {group["_id"]: group["rows"] for group in groups}
    return {folder.value: found.get(folder.value, 0) for folder in InboxFolder}


def page_of(rows: list[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """Rows fetched with limit + 1: the page, and the cursor when more follow."""
    page = rows[:limit]
    return page, SortKey.of(page[-1]).encode() if len(rows) > limit else None
