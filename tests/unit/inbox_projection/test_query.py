"""Filters, cursors and pages (R15, R16)."""

import base64
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.inbox_projection.query import InboxFilters, InvalidInboxQuery, SortKey, counts_of, page_of

AT = 1_772_366_400_123_456  # 2026-03-01T12:00:00.123456Z in microseconds


def test_filters_are_inclusive_ranges_and_a_category_set() -> None:
    filters = InboxFilters(
        min_followers=100, max_followers=5000, categories=("Beauty", "Home", "Beauty"), min_sales_gmv=Decimal("10.5"), max_sales_gmv=Decimal("99")
    )
    assert filters.admits(100, "Beauty", 10.5) and filters.admits(5000, "Home", 99.0)
    assert not filters.admits(99, "Beauty", 50) and not filters.admits(5001, "Beauty", 50)
    assert not filters.admits(1000, "Sports", 50) and not filters.admits(1000, "Beauty", 10.49) and not filters.admits(1000, "Beauty", 99.01)


def test_open_ended_ranges_and_rows_without_a_profile() -> None:
    assert InboxFilters(min_followers=0).admits(0, "x", 0.0) and not InboxFilters(min_followers=0).admits(None, None, None)
    assert InboxFilters(max_sales_gmv=Decimal("1")).admits(5, "x", 1.0) and not InboxFilters(max_sales_gmv=Decimal("1")).admits(5, "x", 1.01)
    assert not InboxFilters(categories=("x",)).admits(None, None, None)
    assert InboxFilters().admits(None, None, None)


@pytest.mark.parametrize(
    "filters",
    [InboxFilters(min_followers=10, max_followers=9), InboxFilters(min_sales_gmv=Decimal("2"), max_sales_gmv=Decimal("1.99"))],
)
def test_an_inverted_range_is_refused(filters: InboxFilters) -> None:
    with pytest.raises(InvalidInboxQuery):
        filters.validate()


def test_a_cursor_round_trips_its_key() -> None:
    key = SortKey(AT, "s1:c9")
    assert SortKey.decode(key.encode()) == key


@given(micros=st.integers(0, 2**63 - 1), conversation=st.text(min_size=1, max_size=129))
def test_cursor_round_trip(micros: int, conversation: str) -> None:
    key = SortKey(micros, conversation)
    assert SortKey.decode(key.encode()) == key


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 at all!",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'{"t": "x", "c": "a"}').decode(),
        base64.urlsafe_b64encode(b'{"t": 1}').decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        base64.urlsafe_b64encode(b'{"t": true, "c": "a"}').decode(),
        base64.urlsafe_b64encode(b'{"t": 1.5, "c": "a"}').decode(),
        base64.urlsafe_b64encode(b'{"t": 99999999999999999999, "c": "a"}').decode(),
        base64.urlsafe_b64encode(b'{"t": -1, "c": "a"}').decode(),
    ],
)
def test_a_foreign_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidInboxQuery):
        SortKey.decode(cursor)


def test_page_of_returns_a_cursor_only_when_more_rows_follow() -> None:
    rows = [{"_id": f"s1:c{i}", "last_activity": AT} for i in range(3)]
    page, cursor = page_of(rows, 2)
    assert [r["_id"] for r in page] == ["s1:c0", "s1:c1"] and SortKey.decode(cursor or "") == SortKey(AT, "s1:c1")
    assert page_of(rows, 3) == (rows, None)


def test_counts_fill_in_zeros() -> None:
    assert counts_of({"unread": 2, "messages": 5}) == {"messages": 5, "unread": 2, "unreplied": 0, "starred": 0, "archived": 0}
