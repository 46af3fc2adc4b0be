"""Folder and filter queries, cursors, and the indexes that serve them (R15, R16)."""

import base64
from decimal import Decimal
from itertools import product

import pytest
from hypothesis import given
from hypothesis import strategies as st

from im_contracts import InboxFolder
from services.inbox_projection.query import SORT, counts_of, counts_pipeline, InboxFilters, InvalidInboxQuery, SortKey, inbox_query, page_of
from services.inbox_projection.store import INBOX_INDEXES

AT = 1_772_366_400_123_456  # 2026-03-01T12:00:00.123456Z in microseconds


def test_folder_query_matches_the_row_s_folder_list() -> None:
    for folder in InboxFolder:
        assert inbox_query("s1", folder, InboxFilters()) == {"seller_id": "s1", "folders": folder.value}


def test_filters_become_ranges_and_a_category_set() -> None:
    filters = InboxFilters(
        min_followers=100, max_followers=5000, categories=("Beauty", "Home", "Beauty"), min_sales_gmv=Decimal("10.5"), max_sales_gmv=Decimal("99")
    )
    assert inbox_query("s1", InboxFolder.UNREAD, filters) == {
        "seller_id": "s1",
        "folders": "unread",
        "followers": {"$gte": 100, "$lte": 5000},
        "main_category": {"$in": ["Beauty", "Home"]},
        "sales_gmv_30d": {"$gte": 10.5, "$lte": 99.0},
    }


def test_open_ended_ranges() -> None:
    assert InboxFilters(min_followers=0).to_query() == {"followers": {"$gte": 0}}
    assert InboxFilters(max_sales_gmv=Decimal("1")).to_query() == {"sales_gmv_30d": {"$lte": 1.0}}


@pytest.mark.parametrize(
    "filters",
    [InboxFilters(min_followers=10, max_followers=9), InboxFilters(min_sales_gmv=Decimal("2"), max_sales_gmv=Decimal("1.99"))],
)
def test_an_inverted_range_is_refused(filters: InboxFilters) -> None:
    with pytest.raises(InvalidInboxQuery):
        filters.to_query()


def test_a_cursor_continues_strictly_after_its_key() -> None:
    key = SortKey(AT, "s1:c9")
    assert SortKey.decode(key.encode()) == key
    assert inbox_query("s1", InboxFolder.MESSAGES, InboxFilters(), key)["$or"] == [
        {"last_activity": {"$lt": AT}},
        {"last_activity": AT, "_id": {"$lt": "s1:c9"}},
    ]


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


# --- every folder and filter query is served by an index ----------------------------------


FILTER_COMBINATIONS = [
    InboxFilters(
        min_followers=1 if followers else None,
        categories=("Beauty",) if category else (),
        max_sales_gmv=Decimal("5") if gmv else None,
    )
    for followers, category, gmv in product([False, True], repeat=3)
]


def serving_index(query: dict, sort: list[tuple[str, int]]) -> str | None:
    """An index that serves the query by the equality-sort-range rule: the
    equality fields first (any order), then the sort fields in sort order and
    direction, then every remaining filter field."""
    equality = {f for f, v in query.items() if not f.startswith("$") and not isinstance(v, dict)}
    equality |= {f for f, v in query.items() if isinstance(v, dict) and "$in" in v}
    others = {f for f, v in query.items() if isinstance(v, dict) and "$in" not in v}
    for name, keys in INBOX_INDEXES.items():
        fields = [f for f, _ in keys]
        lead = set(fields[: len(equality)])
        sort_part = keys[len(equality) : len(equality) + len(sort)]
        if lead == equality and sort_part == sort and others <= set(fields):
            return name
    return None


@pytest.mark.parametrize("folder", list(InboxFolder))
@pytest.mark.parametrize("filters", FILTER_COMBINATIONS)
def test_every_folder_and_filter_combination_has_an_index(folder: InboxFolder, filters: InboxFilters) -> None:
    query = inbox_query("s1", folder, filters, SortKey(AT, "s1:c1"))
    query.pop("$or")  # the keyset bound ranges over the sort fields themselves
    assert serving_index(query, SORT) is not None


def test_counts_match_on_the_folder_index_prefix_and_fill_in_zeros() -> None:
    assert counts_pipeline("s1")[0] == {"$match": {"seller_id": "s1"}}
    assert INBOX_INDEXES["inbox_by_folder"][0][0] == "seller_id"
    assert counts_of([{"_id": "unread", "rows": 2}, {"_id": "messages", "rows": 5}]) == {
        "messages": 5, "unread": 2, "unreplied": 0, "starred": 0, "archived": 0
    }
