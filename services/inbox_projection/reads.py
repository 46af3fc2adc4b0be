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

A bucket is read as a `BucketView`, its live entries as tuples, and views are
kept between pages (`BucketViews`): a slot names the version of the bucket it
summarises, so a kept view at least that new stands for the bucket as the
directory knows it, on whichever instance answers. The rows are always read
from the database: they decide what the page returns.
"""

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

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

# A live entry as a page filters it: sort time, conversation id, folders (bits),
# followers, main category, sales GMV.
Listed = tuple[int, str, int, int | None, str | None, float | None]


@dataclass(frozen=True, slots=True)
class BucketView:
    version: int  # the bucket's `bv` when read
    listed: tuple[Listed, ...]


def view_of(bucket: dict[str, Any]) -> BucketView:
    """A bucket as read, its tombstones left out."""
    seller = bucket["seller_id"]
    return BucketView(bucket["bv"], tuple(
        (e["t"], f"{seller}:{creator}", e["f"], e["fo"], e["c"], e["g"]) for creator, e in bucket["e"].items() if is_live(e)
    ))


class BucketViews:
    """Views kept between pages, the least recently used dropped past `capacity`
    entries (a view counts its entries and one)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._views: OrderedDict[str, BucketView] = OrderedDict()
        self._held = 0

    def fresh(self, key: str, version: int | None) -> BucketView | None:
        """The kept view of bucket `key` if it is at least `version` (None: unknown, never)."""
        view = self._views.get(key)
        if view is None or version is None or view.version < version:
            return None
        self._views.move_to_end(key)
        return view

    def keep(self, key: str, view: BucketView) -> None:
        if (old := self._views.get(key)) is not None:
            if old.version >= view.version:
                return
            del self._views[key]
            self._held -= len(old.listed) + 1
        if len(view.listed) + 1 > self.capacity:
            return
        self._views[key] = view
        self._held += len(view.listed) + 1
        while self._held > self.capacity:
            _, dropped = self._views.popitem(last=False)
            self._held -= len(dropped.listed) + 1

    @property
    def held(self) -> int:
        return self._held


def _range_mask(low: float | None, high: float | None) -> int:
    return sum(1 << b for b in band_range(low, high))


@dataclass(frozen=True)
class EntryQuery:
    """One folder with R16's filters, applied to entries and bucket summaries."""

    folder: InboxFolder
    filters: InboxFilters
    after: SortKey | None = None

    def __post_init__(self) -> None:
        self.filters.validate()

    def may_hold(self, slot: dict[str, Any]) -> bool:
        """False when a bucket's slot in the folder proves the bucket holds no match."""
        if not slot["n"]:
            return False
        if self.after is not None and slot["lo"] is not None and slot["lo"] > self.after.last_activity:
            return False
        f = self.filters
        if f.categories and not slot["c"] & sum(1 << category_bit(c) for c in f.categories):
            return False
        if (f.min_followers, f.max_followers) != (None, None) and not slot["f"] & _range_mask(f.min_followers, f.max_followers):
            return False
        if f.gmv_range != (None, None) and not slot["g"] & _range_mask(*f.gmv_range):
            return False
        return True

    def still_there(self, row: dict[str, Any], at: int) -> bool:
        """A stored row still has the entry's sort key, is in the folder and passes the filters."""
        return (
            row["last_activity"] == at
            and self.folder.value in row["folders"]
            and self.filters.admits(row["followers"], row["main_category"], row["sales_gmv_30d"])
        )

    def matches(self, item: Listed) -> bool:
        t, conversation, folders, followers, category, sales_gmv = item
        if not folders & folder_bit(self.folder):
            return False
        if self.after is not None and (t, conversation) >= (self.after.last_activity, self.after.conversation_id):
            return False
        return self.filters.admits(followers, category, sales_gmv)


def candidates(query: EntryQuery, views: list[BucketView]) -> list[tuple[int, str]]:
    """Matching entries of the buckets as sort keys (t, conversation id), newest first."""
    return sorted({(item[0], item[1]) for view in views for item in view.listed if query.matches(item)}, reverse=True)


def certain(found: list[tuple[int, str]], unread_his: list[int]) -> list[tuple[int, str]]:
    """The leading entries no unread bucket can precede (`unread_his`: their `hi`)."""
    if not unread_his:
        return found
    bound = max(unread_his)
    return [key for key in found if key[0] > bound]


Slot = tuple[str, dict[str, Any]]  # bucket id, its summary


def plan_reads(slots: list[Slot], need: int) -> list[list[Slot]]:
    """The slots in batches, newest `hi` first: each batch holds at least `need`
    of the folder's rows (by the counts), so an unfiltered page is usually one
    round trip; later batches double, as a filter rejects entries."""
    batches: list[list[Slot]] = [[]]
    rows = 0
    for slot in slots:
        batches[-1].append(slot)
        rows += slot[1]["n"]
        if rows >= need:
            batches.append([])
            rows = 0
            need *= 2
    return [b for b in batches if b]


def chain_options(seller_id: str, query: EntryQuery) -> list[list[str]]:
    """Sets of chains that each hold every row the query can match: the main
    chain, and one set per filtered dimension."""
    f = query.filters
    options = [[chain_id(seller_id, MAIN)]]
    if f.categories:
        options.append(sorted({chain_id(seller_id, category_dimension(c)) for c in f.categories}))
    if (f.min_followers, f.max_followers) != (None, None):
        options.append([chain_id(seller_id, f"f{b}") for b in band_range(f.min_followers, f.max_followers)])
    if f.gmv_range != (None, None):
        options.append([chain_id(seller_id, f"g{b}") for b in band_range(*f.gmv_range)])
    return options


def cheapest_slots(options: list[list[str]], directories: dict[str, dict[str, Any]], query: EntryQuery, need: int) -> list[Slot]:
    """The buckets that may hold matches, of the option expected to read the fewest
    buckets for `need` rows, newest `hi` first.

    Each option's rows in the folder bound the matches from above, so the
    smallest, `matches`, is the estimate; an option then reads about
    `need / matches` of each of its chains' buckets, but at least one per chain
    (a page is certain only once every chain's newer buckets are read): so
    many thin chains (a wide followers range) lose to the main chain when the
    filter keeps most rows, and win when it keeps few. Ties go to fewer rows."""
    choices = []
    for chains in options:
        per_chain = [
            [(bucket_id(chain, int(n)), slot) for n, slot in folder_slots(directories.get(chain), query.folder).items() if query.may_hold(slot)]
            for chain in chains
        ]
        slots = [slot for chain_slots in per_chain for slot in chain_slots]
        choices.append((per_chain, slots, sum(slot["n"] for _, slot in slots)))
    matches = max(1, min(rows for _, _, rows in choices))

    def cost(candidate: tuple[list[list[Slot]], list[Slot], int]) -> tuple[float, int]:
        per_chain, _, rows = candidate
        return sum(max(1.0, len(chain_slots) * need / matches) for chain_slots in per_chain if chain_slots), rows

    _, best, _ = min(choices, key=cost)
    return sorted(best, key=lambda item: item[1]["hi"] or 0, reverse=True)


async def read_page(
    slots: list[Slot],
    query: EntryQuery,
    need: int,
    read_buckets: Callable[[list[Slot]], Awaitable[list[BucketView]]],
    read_rows: Callable[[list[str]], Awaitable[list[dict[str, Any]]]],
) -> list[dict[str, Any]]:
    """Up to `need` rows of the query from these buckets, in inbox order.

    Buckets are read newest first in batches (plan_reads); an entry is taken
    once no unread bucket can hold a newer one, and only if its row, read by
    `_id`, still sits there and matches (an entry may trail its row by the
    moment between the row's write and the entry's)."""
    found: list[tuple[int, str]] = []
    rows: list[dict[str, Any]] = []
    taken = read = 0
    for batch in plan_reads(slots, need):
        views = await read_buckets(batch)
        read += len(batch)
        found = sorted(set(found) | set(candidates(query, views)), reverse=True)
        sure = certain(found, [slot["hi"] or 0 for _, slot in slots[read:]])
        while taken < len(sure) and len(rows) < need:
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
