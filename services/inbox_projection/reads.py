"""Answering an inbox page from the serving layout (layout.py), without I/O.

A page reads the chain's directory, skips every bucket whose slot excludes
the query (its masks, its time range), reads the rest newest first (`hi`
descending) until the page is certain, then the rows themselves by `_id`. A
filtered page reads the chains of the filter with the fewest rows in the
folder (the categories' chains, the followers range's bands, the GMV range's
bands, or the main chain), so a narrow range reads the rows of its bands, not
the seller's. Counts are the sums of the main chain's folder totals.

Buckets may overlap in time (partitions are projected in parallel, so a row's
activity can arrive after newer activity of another row): a row is certain
once its time is above every unread bucket's `hi`.

Views are kept between pages (`Kept`): a bucket as its live entries by
folder, kept while as new as the version its directory shows (`v.<n>`); a
directory's slots, while its version `dv` is unchanged. So a kept view stands for the document as
the directory knows it, on whichever instance answers. The rows are always
read from the database: they decide what the page returns.
"""

import math
import sys
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from heapq import merge
from itertools import chain
from typing import Any, Generic, TypeVar

from im_contracts import InboxFolder

from services.inbox_projection.layout import (
    FOLDERS,
    MAIN,
    band_range,
    bucket_id,
    category_bit,
    category_dimension,
    chain_id,
    folder_bit,
    is_live,
)
from services.inbox_projection.query import InboxFilters, SortKey

# What EntryQuery.still_there reads of a stored row.
TESTED_FIELDS = ("last_activity", "folders", "followers", "main_category", "sales_gmv_30d")

# A live entry as a page filters it: sort time, conversation id, followers,
# main category, sales GMV.
Listed = tuple[int, str, int | None, str | None, float | None]


@dataclass(frozen=True, slots=True)
class BucketView:
    """A bucket's live entries by folder (bit): a page tests only its folder's."""

    live: int
    by_folder: dict[int, tuple[Listed, ...]]


def view_of(bucket: dict[str, Any]) -> BucketView:
    """A bucket as read, its tombstones left out."""
    seller = bucket["seller_id"]
    by_folder: dict[int, list[Listed]] = {folder_bit(f): [] for f in FOLDERS}
    live = 0
    for creator, e in bucket["e"].items():
        if is_live(e):
            live += 1
            item = (e["t"], f"{seller}:{creator}", e["fo"], e["c"] and sys.intern(e["c"]), e["g"])  # few categories, many entries
            for bit, items in by_folder.items():
                if e["f"] & bit:
                    items.append(item)
    return BucketView(live, {bit: tuple(items) for bit, items in by_folder.items()})


def view_weight(view: BucketView) -> int:
    """Its live entries (an entry in several folders is one tuple), and one."""
    return 1 + view.live


V = TypeVar("V")


class Kept(Generic[V]):
    """Views of documents kept between pages, each with the version of the
    document it shows; the least recently used are dropped past `capacity`
    (in `weight` units)."""

    def __init__(self, capacity: int, weight: Callable[[V], int]) -> None:
        self.capacity = capacity
        self._weight = weight
        self._kept: OrderedDict[Hashable, tuple[int, V, int]] = OrderedDict()
        self.held = 0

    def fresh(self, key: Hashable, version: int | None) -> V | None:
        """The kept view if it shows `version` or later (None: a version unknown, never)."""
        kept = self._kept.get(key)
        if kept is None or version is None or kept[0] < version:
            return None
        self._kept.move_to_end(key)
        return kept[1]

    def keep(self, key: Hashable, version: int, view: V) -> None:
        if (old := self._kept.get(key)) is not None:
            if old[0] >= version:
                return
            del self._kept[key]
            self.held -= old[2]
        weight = self._weight(view)
        if weight > self.capacity:
            return
        self._kept[key] = (version, view, weight)
        self.held += weight
        while self.held > self.capacity:
            _, (_, _, dropped) = self._kept.popitem(last=False)
            self.held -= dropped


def _bands_of(filters: InboxFilters) -> tuple[range | None, range | None]:
    """The followers and sales GMV bands the filters cover (None: not filtered)."""
    followers = (filters.min_followers, filters.max_followers)
    return (
        None if followers == (None, None) else band_range(*followers),
        None if filters.gmv_range == (None, None) else band_range(*filters.gmv_range),
    )


def _mask(bands: range | None) -> int | None:
    return None if bands is None else sum(1 << b for b in bands)


@dataclass(frozen=True)
class EntryQuery:
    """One folder with R16's filters, applied to entries and bucket summaries."""

    folder: InboxFolder
    filters: InboxFilters
    after: SortKey | None = None

    def __post_init__(self) -> None:
        self.filters.validate()

    @cached_property
    def _masks(self) -> tuple[int | None, int | None, int | None]:
        """The category, followers and GMV band masks a slot must meet (None: no filter)."""
        followers, gmv = _bands_of(self.filters)
        categories = sum(1 << category_bit(c) for c in self.filters.categories) if self.filters.categories else None
        return categories, _mask(followers), _mask(gmv)

    def may_hold(self, slot: dict[str, Any]) -> bool:
        """False when a bucket's slot in the folder proves the bucket holds no match."""
        if not slot["n"]:
            return False
        if self.after is not None and slot["lo"] is not None and slot["lo"] > self.after.last_activity:
            return False
        categories, followers, gmv = self._masks
        return (
            (categories is None or bool(slot["c"] & categories))
            and (followers is None or bool(slot["f"] & followers))
            and (gmv is None or bool(slot["g"] & gmv))
        )

    def still_there(self, row: dict[str, Any], at: int) -> bool:
        """A stored row still has the entry's sort key, is in the folder and passes the filters."""
        return (
            row["last_activity"] == at
            and self.folder.value in row["folders"]
            and self.filters.admits(row["followers"], row["main_category"], row["sales_gmv_30d"])
        )

    def matching(self, items: Iterable[Listed]) -> set[tuple[int, str]]:
        """The sort keys (t, conversation id) of the entries that come after the
        cursor and pass the filters (as `InboxFilters.admits`): one comprehension
        with the tests inline, each only when the query has it (a filtered page
        tests thousands of entries; a call per entry was most of its time)."""
        if self.after is None and not self.filters.any_set:  # an unfiltered first page: every entry
            return {(item[0], item[1]) for item in items}
        bound_t, bound_id = (math.inf, "") if self.after is None else (self.after.last_activity, self.after.conversation_id)
        by_followers, by_gmv = self.filters.ranges
        f_lo, f_hi = by_followers or (0, 0)
        g_lo, g_hi = by_gmv or (0, 0)
        categories = frozenset(self.filters.categories)
        return {
            (t, conversation)
            for t, conversation, followers, category, gmv in items
            if (t < bound_t or (t == bound_t and conversation < bound_id))
            and (by_followers is None or (followers is not None and f_lo <= followers <= f_hi))
            and (by_gmv is None or (gmv is not None and g_lo <= gmv <= g_hi))
            and (not categories or category in categories)
        }


def candidates(query: EntryQuery, views: list[BucketView]) -> set[tuple[int, str]]:
    """Matching entries of the buckets as sort keys (t, conversation id)."""
    bit = folder_bit(query.folder)
    return query.matching(chain.from_iterable(view.by_folder[bit] for view in views))


def certain(found: list[tuple[int, str]], unread_hi: int | None) -> list[tuple[int, str]]:
    """The leading entries no unread bucket can precede (`unread_hi`: the newest
    unread bucket's `hi`, None when every bucket is read)."""
    if unread_hi is None:
        return found
    return [key for key in found if key[0] > unread_hi]


Slot = tuple[str, dict[str, Any]]  # bucket id, its summary


def batches_of(slots: list[Slot], need: int) -> Iterator[tuple[list[Slot], int | None]]:
    """The slots (newest `hi` first) in batches, each with the `hi` of the first
    slot after it (None after the last): each batch holds at least `need` of
    the folder's rows (by the counts), so an unfiltered page is usually one
    round trip; later batches double, as a filter rejects entries. Lazy: a page
    of a seller with thousands of buckets walks only the slots it reads."""
    start = 0
    while start < len(slots):
        end, rows = start, 0
        while end < len(slots) and rows < need:
            rows += slots[end][1]["n"]
            end += 1
        yield slots[start:end], (slots[end][1]["hi"] or 0) if end < len(slots) else None
        start, need = end, need * 2


def chain_options(seller_id: str, query: EntryQuery) -> list[list[str]]:
    """Sets of chains that each hold every row the query can match: the main
    chain, and one set per filtered dimension."""
    options = [[chain_id(seller_id, MAIN)]]
    if query.filters.categories:
        options.append(sorted({chain_id(seller_id, category_dimension(c)) for c in query.filters.categories}))
    for prefix, bands in zip("fg", _bands_of(query.filters)):
        if bands is not None:
            options.append([chain_id(seller_id, f"{prefix}{b}") for b in bands])
    return options


def cheapest_slots(options: list[list[str]], slots_of: dict[str, list[Slot]], query: EntryQuery, need: int) -> list[Slot]:
    """The buckets that may hold matches, of the option expected to read the fewest
    buckets for `need` rows, newest `hi` first (`slots_of`: each chain's slots in
    the query's folder, newest first, `chain_slots`).

    Each option's rows in the folder bound the matches from above, so the
    smallest, `matches`, is the estimate; an option then reads about
    `need / matches` of each of its chains' buckets, but at least one per chain
    (a page is certain only once every chain's newer buckets are read): so
    many thin chains (a wide followers range) lose to the main chain when the
    filter keeps most rows, and win when it keeps few. Ties go to fewer rows."""
    if len(options) == 1 and query.after is None:  # an unfiltered first page: the main chain's slots as kept
        return slots_of.get(options[0][0], [])
    choices = []
    for chains in options:
        per_chain = [[(key, slot) for key, slot in slots_of.get(chain, ()) if query.may_hold(slot)] for chain in chains]
        choices.append((per_chain, sum(slot["n"] for chain_slots in per_chain for _, slot in chain_slots)))
    matches = max(1, min(rows for _, rows in choices))

    def cost(candidate: tuple[list[list[Slot]], int]) -> tuple[float, int]:
        per_chain, rows = candidate
        return sum(max(1.0, len(chain_slots) * need / matches) for chain_slots in per_chain if chain_slots), rows

    best, _ = min(choices, key=cost)
    return best[0] if len(best) == 1 else list(merge(*best, key=newest_first, reverse=True))


def newest_first(slot: Slot) -> int:
    """A slot's place in reading order (chain_slots, cheapest_slots): `hi` descending."""
    return slot[1]["hi"] or 0


async def read_page(
    slots: list[Slot],
    query: EntryQuery,
    need: int,
    read_buckets: Callable[[list[Slot]], Awaitable[list[BucketView]]],
    read_rows: Callable[[list[str]], Awaitable[list[dict[str, Any]]]],
) -> list[dict[str, Any]]:
    """Up to `need` rows of the query from these buckets (newest `hi` first), in inbox order.

    Buckets are read newest first in batches (batches_of); an entry is taken
    once no unread bucket can hold a newer one, and only if its row, read by
    `_id`, still sits there and matches (an entry may trail its row by the
    moment between the row's write and the entry's)."""
    found: list[tuple[int, str]] = []
    rows: list[dict[str, Any]] = []
    taken = 0
    for batch, unread_hi in batches_of(slots, need):
        views = await read_buckets(batch)
        found = sorted(candidates(query, views).union(found), reverse=True)
        sure = certain(found, unread_hi)
        # Rows are read once the certain entries can fill the page, or no bucket is
        # left: one round trip for the page, not one per batch of buckets.
        while taken < len(sure) and len(rows) < need and (len(sure) - taken >= need - len(rows) or unread_hi is None):
            keys = sure[taken : taken + need - len(rows)]
            taken += len(keys)
            docs = {d["_id"]: d for d in await read_rows([c for _, c in keys])}
            rows += [docs[c] for t, c in keys if c in docs and query.still_there(docs[c], t)]
        if len(rows) >= need:
            break
    return rows


def folder_counts(directory: dict[str, Any] | None) -> dict[str, int]:
    """A main chain's rows per folder."""
    return {f.value: sum(slot["n"] for slot in folder_slots(directory, f).values()) for f in FOLDERS}


def folder_slots(directory: dict[str, Any] | None, folder: InboxFolder) -> dict[str, dict[str, Any]]:
    """A chain's bucket summaries in one folder, by bucket number."""
    return ((directory or {}).get("f") or {}).get(folder.value) or {}


def chain_slots(directory: dict[str, Any], folder: InboxFolder) -> list[Slot]:
    """A chain's bucket summaries in one folder with their buckets' ids, newest
    `hi` first, each with the version of the bucket it shows (`v`, None when
    the directory has none); buckets without rows in the folder left out."""
    versions = directory.get("v") or {}
    slots = [(bucket_id(directory["_id"], int(n)), {**slot, "v": versions.get(n)}) for n, slot in folder_slots(directory, folder).items() if slot["n"]]
    return sorted(slots, key=newest_first, reverse=True)
