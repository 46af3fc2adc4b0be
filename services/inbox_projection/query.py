"""Inbox reads without I/O: filters, sort order, cursors (R15, R16); how the
serving layout answers them is layout.py.

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
import math
from dataclasses import dataclass
from functools import cached_property
from decimal import Decimal
from typing import Any

from im_contracts import InboxFolder

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


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


def _check_range(field: str, low: Any, high: Any) -> None:
    if low is not None and high is not None and low > high:
        raise InvalidInboxQuery(f"min_{field} must not exceed max_{field}")


@dataclass(frozen=True)
class InboxFilters:
    """R16: follower range, main categories (any of), 30-day sales GMV range; all optional."""

    min_followers: int | None = None
    max_followers: int | None = None
    categories: tuple[str, ...] = ()
    min_sales_gmv: Decimal | None = None
    max_sales_gmv: Decimal | None = None

    def validate(self) -> None:
        _check_range("followers", self.min_followers, self.max_followers)
        _check_range("sales_gmv", self.min_sales_gmv, self.max_sales_gmv)

    @cached_property
    def gmv_range(self) -> tuple[float | None, float | None]:
        """Sales GMV bounds as the stored number compares them (once: a page tests thousands of entries)."""
        return tuple(None if v is None else float(v) for v in (self.min_sales_gmv, self.max_sales_gmv))  # type: ignore[return-value]

    @cached_property
    def any_set(self) -> bool:
        """Whether any filter is set (without one, every row passes)."""
        return self != InboxFilters()

    @cached_property
    def ranges(self) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
        """The followers and sales GMV ranges, open ends as infinities (None: not filtered)."""
        return tuple(  # type: ignore[return-value]
            None if (low, high) == (None, None) else (-math.inf if low is None else low, math.inf if high is None else high)
            for low, high in ((self.min_followers, self.max_followers), self.gmv_range)
        )

    def admits(self, followers: int | None, category: str | None, sales_gmv: float | None) -> bool:
        """Whether a row with these profile fields passes every filter (a missing
        profile fails any profile filter)."""
        by_followers, by_gmv = self.ranges
        return (
            (by_followers is None or (followers is not None and by_followers[0] <= followers <= by_followers[1]))
            and (by_gmv is None or (sales_gmv is not None and by_gmv[0] <= sales_gmv <= by_gmv[1]))
            and (not self.categories or category in self.categories)
        )


def counts_of(counts: dict[str, int]) -> dict[str, int]:
    """Every folder's count, zero where the seller has no row."""
    return {folder.value: counts.get(folder.value, 0) for folder in InboxFolder}


def page_of(rows: list[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """Rows fetched with limit + 1: the page, and the cursor when more follow."""
    page = rows[:limit]
    return page, SortKey.of(page[-1]).encode() if len(rows) > limit else None
