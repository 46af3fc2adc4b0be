"""The serving layout's reads against a brute-force sort and filter (layout.py)."""

import asyncio
import random
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from im_contracts import InboxFolder
from services.inbox_projection.layout import (
    band,
    bucket_change,
    contributions,
    counter_deltas,
    fresh_layout,
    targets_of,
    tombstone,
)
from services.inbox_projection.reads import (
    BucketView,
    EntryQuery,
    Kept,
    chain_options,
    cheapest_slots,
    chain_slots,
    folder_counts,
    read_page,
    view_of,
    view_weight,
)
from services.inbox_projection.query import InboxFilters, SortKey

CATEGORIES = ("beauty", "home", "toys", "pets")
FOLDER_SETS = (["messages"], ["messages", "unread"], ["messages", "unread", "unreplied"], ["starred", "archived"], ["archived"], ["messages", "starred"])


def row(seller: str, n: int, rng: random.Random) -> dict:
    profiled = rng.random() < 0.9
    return {
        "_id": f"{seller}:c{n}", "seller_id": seller, "creator_id": f"c{n}",
        "last_activity": rng.randrange(50),  # many ties: the conversation id breaks them
        "folders": rng.choice(FOLDER_SETS),
        "followers": rng.choice([0, 1, 7, 100, 1000, 65_000]) if profiled else None,
        "main_category": rng.choice(CATEGORIES) if profiled else None,
        "sales_gmv_30d": rng.choice([0.0, 0.5, 12.25, 999.99]) if profiled else None,
    }


def slots_of(directories: list[dict], folder: InboxFolder) -> dict[str, list]:
    return {d["_id"]: chain_slots(d, folder) for d in directories}


def brute_force(rows: list[dict], query: EntryQuery) -> list[str]:
    keep = [r for r in rows if query.folder.value in r["folders"] and query.filters.admits(r["followers"], r["main_category"], r["sales_gmv_30d"])]
    return [r["_id"] for r in sorted(keep, key=lambda r: (r["last_activity"], r["_id"]), reverse=True)]


def paged(rows: list[dict], folder: InboxFolder, filters: InboxFilters, limit: int, size: int, *, overlap: bool) -> tuple[list[str], int]:
    docs = [dict(r) for r in rows]
    buckets, directories = fresh_layout(docs, size)
    if overlap:  # buckets as live writes leave them: time ranges that overlap
        for directory in directories:
            for slots in directory["f"].values():
                for slot in slots.values():
                    slot["hi"] += 7
    by_id = {b["_id"]: b for b in buckets}
    rows_by_id = {d["_id"]: d for d in docs}
    reads = 0

    async def read_buckets(slots: list[tuple[str, dict]]) -> list[BucketView]:
        nonlocal reads
        reads += 1
        return [view_of(by_id[k]) for k, _ in slots]

    async def read_rows(ids: list[str]) -> list[dict]:
        return [rows_by_id[i] for i in ids if i in rows_by_id]

    async def all_pages() -> list[str]:
        found: list[str] = []
        after = None
        while True:
            query = EntryQuery(folder, filters, after)
            slots = cheapest_slots(chain_options("s1", query), slots_of(directories, folder), query, limit + 1)
            page = await read_page(slots, query, limit + 1, read_buckets, read_rows)
            found += [r["_id"] for r in page[:limit]]
            if len(page) <= limit:
                return found
            after = SortKey.of(page[limit - 1])

    return asyncio.run(all_pages()), reads


FILTERS = st.sampled_from(
    [
        InboxFilters(),
        InboxFilters(categories=("beauty",)),
        InboxFilters(categories=("home", "pets")),
        InboxFilters(min_followers=100, max_followers=1000),
        InboxFilters(min_followers=2, max_followers=6),  # inside one band, matching nothing
        InboxFilters(max_sales_gmv=Decimal("12.25")),
        InboxFilters(min_sales_gmv=Decimal("0.5"), categories=("toys",), min_followers=1),
    ]
)


@settings(max_examples=60, deadline=None)
@given(
    count=st.integers(0, 120), seed=st.integers(0, 10_000), folder=st.sampled_from(list(InboxFolder)), filters=FILTERS,
    limit=st.integers(1, 9), size=st.integers(1, 12), overlap=st.booleans(),
)
def test_pages_through_the_layout_equal_a_sort_and_filter(count, seed, folder, filters, limit, size, overlap) -> None:
    rng = random.Random(seed)
    rows = [row("s1", n, rng) for n in range(count)]
    found, _ = paged(rows, folder, filters, limit, size, overlap=overlap)
    assert found == brute_force(rows, EntryQuery(folder, filters))


def test_a_filter_no_bucket_can_match_reads_no_bucket() -> None:
    rng = random.Random(3)
    rows = [row("s1", n, rng) for n in range(400)]
    _, reads = paged(rows, InboxFolder.MESSAGES, InboxFilters(categories=("absent",)), 20, 10, overlap=False)
    assert reads == 0
    _, reads = paged(rows, InboxFolder.MESSAGES, InboxFilters(min_followers=10**12), 20, 10, overlap=False)
    assert reads == 0


def test_an_unfiltered_page_reads_its_buckets_in_one_round_trip() -> None:
    rng = random.Random(4)
    rows = [dict(row("s1", n, rng), folders=["messages"]) for n in range(400)]
    docs = [dict(r) for r in rows]
    buckets, directories = fresh_layout(docs, 10)
    batches = []

    async def read_buckets(slots: list[tuple[str, dict]]) -> list[BucketView]:
        keys = [k for k, _ in slots]
        batches.append(keys)
        return [view_of(b) for b in buckets if b["_id"] in keys]

    async def read_rows(ids: list[str]) -> list[dict]:
        return [d for d in docs if d["_id"] in ids]

    query = EntryQuery(InboxFolder.MESSAGES, InboxFilters())
    slots = cheapest_slots(chain_options("s1", query), slots_of(directories, query.folder), query, 21)
    page = asyncio.run(read_page(slots, query, 21, read_buckets, read_rows))
    assert len(page) == 21 and len(batches) == 1 and len(batches[0]) == 3


def test_a_narrow_followers_range_reads_only_its_band_s_chain() -> None:
    rng = random.Random(6)
    rows = [dict(r, followers=rng.choice([1000, 2**20])) for n in range(300) if (r := dict(row("s1", n, rng), folders=["messages"]))["followers"] is not None]
    rows[7]["followers"] = 1001
    _, directories = fresh_layout([dict(r) for r in rows], 10)
    query = EntryQuery(InboxFolder.MESSAGES, InboxFilters(min_followers=1000, max_followers=1010))
    slots = cheapest_slots(chain_options("s1", query), slots_of(directories, query.folder), query, 21)
    assert {key.split("|")[0] for key, _ in slots} == {f"s1/f{band(1000)}"}
    assert sum(slot["n"] for _, slot in slots) == sum(r["followers"] < 2000 for r in rows)
    found, _ = paged(rows, InboxFolder.MESSAGES, query.filters, 5, 10, overlap=False)
    assert found == brute_force(rows, query)


def test_a_wide_range_that_keeps_most_rows_reads_the_main_chain_not_each_band() -> None:
    rng = random.Random(8)
    rows = [dict(row("s1", n, rng), folders=["messages"], followers=int(10 ** rng.uniform(2, 6.5))) for n in range(600)]
    for r in rows:
        r.update(main_category=r["main_category"] or "home", sales_gmv_30d=r["sales_gmv_30d"] or 1.0)
    _, directories = fresh_layout([dict(r) for r in rows], 10)
    query = EntryQuery(InboxFolder.MESSAGES, InboxFilters(min_followers=100))
    slots = cheapest_slots(chain_options("s1", query), slots_of(directories, query.folder), query, 21)
    assert {key.split("|")[0] for key, _ in slots} == {"s1"}


def test_counters_follow_entries_and_counts_sum_them() -> None:
    entry = {"v": 1, "t": 5, "f": 0b11, "fo": 1000, "c": "home", "g": 3.5}
    assert set(contributions(entry)) == {
        "h.messages.n", "h.unread.n", f"h.messages.f{band(1000)}", f"h.unread.f{band(1000)}", f"h.messages.g{band(3.5)}",
        f"h.unread.g{band(3.5)}", *(p for p in contributions(entry) if ".c" in p),
    }
    assert counter_deltas(entry, entry) == {}
    assert all(d == -1 for d in counter_deltas(entry, tombstone(2)).values())
    rng = random.Random(5)
    rows = [row("s1", n, rng) for n in range(50)]
    _, directories = fresh_layout(rows, 7)
    assert folder_counts(next(d for d in directories if d["_id"] == "s1")) == {f.value: sum(f.value in r["folders"] for r in rows) for f in InboxFolder}
    assert folder_counts(None) == dict.fromkeys((f.value for f in InboxFolder), 0)


def test_bands_are_powers_of_two_and_capped() -> None:
    assert [band(v) for v in (0, 1, 2, 3, 4, 1023, 1024)] == [0, 1, 2, 2, 3, 10, 11]
    assert band(2**80) == 61 and band(0.99) == 0


def apply_update(bucket: dict, guard: dict, update: dict) -> bool:
    """An update as MongoDB applies it to one bucket, for the paths the layout writes."""
    def get(path: str):
        value = bucket
        for part in path.split("."):
            if not isinstance(value, dict) or part not in value:
                return None
            value = value[part]
        return value

    def put(path: str, value) -> None:
        *parents, last = path.split(".")
        target = bucket
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value

    for path, expected in guard.items():
        if (get(path) is not None) != (expected != {"$exists": False}) or (expected != {"$exists": False} and get(path) != expected):
            return False
    for path, value in update["$set"].items():
        put(path, value)
    for path, delta in update["$inc"].items():
        put(path, (get(path) or 0) + delta)
    for op, pick in (("$max", max), ("$min", min)):
        for path, value in update.get(op, {}).items():
            put(path, value if get(path) is None else pick(get(path), value))
    return True


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(1, 4), st.booleans(), st.integers(0, 30), st.sampled_from(FOLDER_SETS)), max_size=25))
@settings(max_examples=200, deadline=None)
def test_a_bucket_change_of_many_entries_keeps_the_counters_of_its_live_entries(changes) -> None:
    bucket = {"e": {}, "h": {}, "bv": 0, "keys": 0}
    expected: dict[str, dict] = {}
    for start in range(0, len(changes), 3):  # a few entries per update, as a batch brings them
        entries = {}
        for creator, v, live, t, folders in changes[start : start + 3]:
            entry = {"v": v, "t": t, "f": sum(1 << i for i, f in enumerate(InboxFolder) if f.value in folders), "fo": 10 * t, "c": "home", "g": 1.0}
            entries.setdefault(f"c{creator}", entry if live else tombstone(v))
        change = bucket_change(entries, dict(bucket["e"]))
        if change is None:
            assert all(bucket["e"].get(c, {"v": 0})["v"] >= e["v"] for c, e in entries.items())
            continue
        assert apply_update(bucket, *change)
        for creator, entry in entries.items():
            if creator not in expected or expected[creator]["v"] < entry["v"]:
                expected[creator] = entry
    assert bucket["e"] == expected
    assert bucket["keys"] == len(expected)
    totals: dict[str, int] = {}
    for entry in expected.values():
        for path in contributions(entry):
            totals[path] = totals.get(path, 0) + 1
    counted = {f"h.{folder}.{name}": n for folder, counters in bucket["h"].items() for name, n in counters.items() if n}
    assert counted == totals
    assert all(n >= 0 for counters in bucket["h"].values() for n in counters.values())
    live_times = [e["t"] for e in expected.values() if "x" not in e]
    if live_times:
        assert bucket["lo"] <= min(live_times) and bucket["hi"] >= max(live_times)


def test_a_row_s_targets_are_its_entries_then_tombstones_where_it_was() -> None:
    doc = {**row("s1", 1, random.Random(1)), "v": 4, "placed": {"main": 3}, "stale": [["main", 2]]}
    doc.update(followers=None)
    assert targets_of(doc) == [("s1", 3, "c1", {"v": 4, "t": doc["last_activity"], "f": targets_of(doc)[0][3]["f"], "fo": None,
                                                  "c": doc["main_category"], "g": doc["sales_gmv_30d"]}), ("s1", 2, "c1", tombstone(4))]
    assert targets_of({**doc, "folders": []}) == [("s1", 2, "c1", tombstone(4))]


def entries(count: int) -> BucketView:
    return BucketView(count, {1: tuple((t, f"s:c{t}", None, None, None) for t in range(count))})


def test_a_kept_view_stands_for_its_document_only_while_as_new_as_the_version_asked() -> None:
    kept: Kept[BucketView] = Kept(100, view_weight)
    kept.keep("b|1", 3, entries(5))
    assert kept.fresh("b|1", 3) is not None and kept.fresh("b|1", 2) is not None
    assert kept.fresh("b|1", 4) is None  # the directory knows a later change
    assert kept.fresh("b|1", None) is None  # no version known: always read
    kept.keep("b|1", 2, entries(1))  # a slower read of an older version
    assert kept.fresh("b|1", 3).live == 5


def test_views_past_the_capacity_drop_the_least_recently_used() -> None:
    kept: Kept[BucketView] = Kept(20, view_weight)
    for n in range(3):
        kept.keep(f"b|{n}", 1, entries(5))  # 6 each
    kept.fresh("b|0", 1)
    kept.keep("b|3", 1, entries(5))
    assert [n for n in range(4) if kept.fresh(f"b|{n}", 1)] == [0, 2, 3] and kept.held == 18
    kept.keep("b|big", 1, entries(25))  # larger than the whole capacity: not kept
    assert kept.fresh("b|big", 1) is None and kept.held == 18


def test_a_view_holds_each_folder_s_live_entries_and_no_tombstone() -> None:
    bucket = {"seller_id": "s", "bv": 4, "e": {"c1": {"v": 2, "t": 9, "f": 0b101, "fo": 5, "c": "toys", "g": 1.5}, "c2": tombstone(3)}}
    view = view_of(bucket)
    assert view.live == 1 and view_weight(view) == 2
    assert view.by_folder[0b1] == view.by_folder[0b100] == ((9, "s:c1", 5, "toys", 1.5),) and view.by_folder[0b10] == ()


maybe = lambda strategy: st.none() | strategy  # noqa: E731


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 9), st.sampled_from(["s:a", "s:b", "s:c"]), maybe(st.integers(0, 2_000)),
                       maybe(st.sampled_from(CATEGORIES)), maybe(st.sampled_from([0.0, 0.5, 12.25, 999.99]))), max_size=40),
    maybe(st.integers(0, 2_000)), maybe(st.integers(0, 2_000)), st.lists(st.sampled_from(CATEGORIES), max_size=2, unique=True),
    maybe(st.sampled_from([Decimal("0"), Decimal("0.5"), Decimal("12.25")])), maybe(st.sampled_from([Decimal("0.5"), Decimal("999.99")])),
    maybe(st.tuples(st.integers(0, 9), st.sampled_from(["s:a", "s:b", "s:c"]))),
)
def test_matching_entries_are_those_after_the_cursor_that_the_filters_admit(
    items, min_followers, max_followers, categories, min_gmv, max_gmv, after
) -> None:
    filters = InboxFilters(min_followers, max_followers, tuple(categories), min_gmv, max_gmv)
    try:
        filters.validate()
    except ValueError:
        return
    query = EntryQuery(InboxFolder.MESSAGES, filters, None if after is None else SortKey(*after))
    expected = {(t, c) for t, c, fo, cat, g in items if (after is None or (t, c) < after) and filters.admits(fo, cat, g)}
    assert query.matching(items) == expected
