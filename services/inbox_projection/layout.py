"""The inbox's serving layout without I/O: each seller's ordering in buckets.

A *chain* is one ordering of a set of a seller's rows, in buckets: the main
chain holds all of them (chain id = seller id); a dimension chain holds the
rows of one category (`<seller>/c<name, base64url>`), one followers band
(`<seller>/f<band>`) or one sales GMV band (`<seller>/g<band>`), a band per
power of two. So every listed row (a conversation with messages) is in up to
four chains, with one *entry* in one bucket of each: `{v, t, f, fo, c, g}` —
the row's version, sort time (`last_activity`), folders as bits, followers,
main category and sales GMV — under the creator id in the bucket's `e` map.
A row with new activity moves its entries to the *head* bucket of each chain;
a full head (BUCKET_SIZE keys) is followed by a new one, so a bucket holds a
bounded slice of the chain's ordering. An entry left behind becomes a
tombstone `{v, x: 1}` that an older write can no longer overwrite (versions
only grow).

Each bucket counts what it holds per folder (`h.<folder>.n`) and per folder
and filter band (`c<bit>` category hash, `f<band>` followers and `g<band>`
sales GMV bands, a band per power of two), in the same atomic update as the
entry. The chain's *directory* keeps, per folder, one slot per bucket holding rows
of the folder: the folder's rows, those counts as bit masks, and the bucket's
time range `[lo, hi]` (folder first, so a page reads its folder's slots alone). A page
reads the directory, skips every bucket whose masks exclude the query, reads
the rest newest first (`hi` descending) until the page is certain, then the
rows themselves by `_id`. A filtered page reads the chains of the filter with
the fewest rows in the folder (the categories' chains, the followers range's
bands, the GMV range's bands, or the main chain), so a narrow range reads the
rows of its bands, not the seller's. Counts are the sums of the main chain's
folder totals.

Buckets may overlap in time (partitions are projected in parallel, so a row's
activity can arrive after newer activity of another row): a row is certain
once its time is above every unread bucket's `hi`.
"""

import base64
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from im_contracts import InboxFolder

from services.inbox_projection.query import InboxFilters, SortKey

BUCKET_SIZE = 500
FOLDERS = tuple(InboxFolder)
_BANDS = 62  # bit masks stay below 2**62: BSON integers are signed 64-bit

Entry = dict[str, Any]


def folder_bit(folder: InboxFolder) -> int:
    return 1 << FOLDERS.index(folder)


def folder_bits(folders: list[str]) -> int:
    return sum(folder_bit(InboxFolder(f)) for f in folders)


def band(value: float) -> int:
    """A band per power of two, so a range covers few bands and a band few rows."""
    return min(int(value).bit_length(), _BANDS - 1)


def category_bit(category: str) -> int:
    return zlib.crc32(category.encode()) % _BANDS


def bucket_id(chain: str, n: int) -> str:
    return f"{chain}|{n}"


MAIN = "main"


def category_dimension(category: str) -> str:
    """A category's chain, by its exact name (base64url: no dots in a field name)."""
    return "c" + base64.urlsafe_b64encode(category.encode()).decode().rstrip("=")


def chain_id(seller_id: str, dimension: str) -> str:
    """`dimension`: MAIN, or `c<category>`, `f<band>`, `g<band>`."""
    return seller_id if dimension == MAIN else f"{seller_id}/{dimension}"


def dimensions_of(doc: dict[str, Any]) -> list[str]:
    """The chains a stored row belongs in: none while unlisted, the main one, and
    with a profile its category's, followers band's and sales GMV band's."""
    if not doc["folders"]:
        return []
    if doc["followers"] is None:
        return [MAIN]
    return [MAIN, category_dimension(doc["main_category"]), f"f{band(doc['followers'])}", f"g{band(doc['sales_gmv_30d'])}"]


def entry_of(doc: dict[str, Any]) -> Entry | None:
    """A stored row's entry; None while the row is not listed (no message yet)."""
    if not doc["folders"]:
        return None
    return {
        "v": doc["v"], "t": doc["last_activity"], "f": folder_bits(doc["folders"]),
        "fo": doc["followers"], "c": doc["main_category"], "g": doc["sales_gmv_30d"],
    }


def tombstone(v: int) -> Entry:
    return {"v": v, "x": 1}


def is_live(entry: Entry | None) -> bool:
    return entry is not None and "x" not in entry


def contributions(entry: Entry | None) -> dict[str, int]:
    """The counter paths a live entry adds 1 to."""
    if not is_live(entry):
        return {}
    assert entry is not None
    found = {}
    for folder in FOLDERS:
        if entry["f"] & folder_bit(folder):
            found[f"h.{folder.value}.n"] = 1
            if entry["fo"] is not None:
                found[f"h.{folder.value}.c{category_bit(entry['c'])}"] = 1
                found[f"h.{folder.value}.f{band(entry['fo'])}"] = 1
                found[f"h.{folder.value}.g{band(entry['g'])}"] = 1
    return found


def counter_deltas(old: Entry | None, new: Entry | None) -> dict[str, int]:
    before, after = contributions(old), contributions(new)
    deltas = {path: after.get(path, 0) - before.get(path, 0) for path in before.keys() | after.keys()}
    return {path: d for path, d in deltas.items() if d}


def summary(bucket: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A bucket as the directory keeps it, per folder that holds live rows: its time
    range, the folder's live rows, and the masks of the bands they occupy."""
    slots = {}
    for folder, counters in bucket.get("h", {}).items():
        if not counters.get("n"):
            continue
        slot = {"lo": bucket.get("lo"), "hi": bucket.get("hi"), "n": counters["n"], "c": 0, "f": 0, "g": 0}
        for name, count in counters.items():
            if name != "n" and count > 0:
                slot[name[0]] |= 1 << int(name[1:])
        slots[folder] = slot
    return slots


Target = tuple[str, int, str, Entry]  # chain, bucket number, creator id, entry


def targets_of(doc: dict[str, Any]) -> list[Target]:
    """What the layout must hold for a stored row: its entry in the bucket of each
    chain that places it, and a tombstone in each bucket that may still hold an
    older one (the entry first: a bucket that is both keeps the entry)."""
    seller, creator, entry = doc["seller_id"], doc["creator_id"], entry_of(doc)
    placed = [] if entry is None else [(chain_id(seller, d), n, creator, entry) for d, n in doc["placed"].items()]
    return placed + [(chain_id(seller, d), n, creator, tombstone(doc["v"])) for d, n in doc["stale"]]


def bucket_change(entries: dict[str, Entry], stored: dict[str, Entry]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The filter and update that set these entries (by creator) in one bucket, each
    unless the stored one (`stored`, as read) is as new; the counters change in the
    same update, which only applies while every entry it replaces is as read.
    None when nothing changes."""
    guard: dict[str, Any] = {}
    sets: dict[str, Entry] = {}
    counters: dict[str, int] = {"bv": 1, "keys": 0}
    times = []
    for creator, entry in entries.items():
        old = stored.get(creator)
        if old is not None and old["v"] >= entry["v"]:
            continue
        path = f"e.{creator}"
        sets[path] = entry
        guard.update({f"{path}.v": old["v"]} if old is not None else {path: {"$exists": False}})
        counters["keys"] += old is None
        for counter, delta in counter_deltas(old, entry).items():
            counters[counter] = counters.get(counter, 0) + delta
        if is_live(entry):
            times.append(entry["t"])
    if not sets:
        return None
    update: dict[str, Any] = {"$set": sets, "$inc": counters}
    if times:
        update["$max"], update["$min"] = {"hi": max(times)}, {"lo": min(times)}
    return guard, update


def empty_bucket(key: str, seller_id: str) -> dict[str, Any]:
    return {"_id": key, "seller_id": seller_id, "e": {}, "h": {}, "bv": 0, "keys": 0}


def notes(chain: str, n: int, bucket: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Directory changes (filter, update) for a bucket read after a change of it (maybe
    with later ones): its summary unless a later one is noted (`v.<n>`, the bucket's
    version it shows), and the next head when it is full. A directory keeps its
    slots by folder first (`f.<folder>.<n>`), so a page reads its folder's alone."""
    slots = summary(bucket)
    update: dict[str, Any] = {"$set": {f"v.{n}": bucket["bv"], **{f"f.{folder}.{n}": slot for folder, slot in slots.items()}}}
    if emptied := [f.value for f in FOLDERS if f.value not in slots]:
        update["$unset"] = {f"f.{folder}.{n}": "" for folder in emptied}
    found = [({"_id": chain, "$or": [{f"v.{n}": {"$lt": bucket["bv"]}}, {f"v.{n}": {"$exists": False}}]}, update)]
    if bucket["keys"] >= BUCKET_SIZE:
        found.append(({"_id": chain, "head": n}, {"$set": {"head": n + 1}}))
    return found


# --- reads ----------------------------------------------------------------------------------


def _range_mask(low: float | None, high: float | None) -> int:
    return sum(1 << b for b in _bands(low, high))


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
        gmv = f.gmv_range()
        if gmv != (None, None) and not slot["g"] & _range_mask(*gmv):
            return False
        return True

    def still_there(self, row: dict[str, Any], at: int) -> bool:
        """A stored row still has the entry's sort key, is in the folder and passes the filters."""
        return (
            row["last_activity"] == at
            and self.folder.value in row["folders"]
            and self.filters.admits(row["followers"], row["main_category"], row["sales_gmv_30d"])
        )

    def matches(self, conversation: str, entry: Entry) -> bool:
        if not is_live(entry) or not entry["f"] & folder_bit(self.folder):
            return False
        if self.after is not None and (entry["t"], conversation) >= (self.after.last_activity, self.after.conversation_id):
            return False
        return self.filters.admits(entry["fo"], entry["c"], entry["g"])


def candidates(query: EntryQuery, buckets: list[dict[str, Any]]) -> list[tuple[int, str]]:
    """Matching entries of the buckets as sort keys (t, conversation id), newest first."""
    found = set()
    for bucket in buckets:
        seller = bucket["seller_id"]
        for creator, entry in bucket["e"].items():
            conversation = f"{seller}:{creator}"
            if query.matches(conversation, entry):
                found.add((entry["t"], conversation))
    return sorted(found, reverse=True)


def certain(found: list[tuple[int, str]], unread_his: list[int]) -> list[tuple[int, str]]:
    """The leading entries no unread bucket can precede (`unread_his`: their `hi`)."""
    if not unread_his:
        return found
    bound = max(unread_his)
    return [key for key in found if key[0] > bound]


Slot = tuple[str, dict[str, Any]]  # bucket id, its summary


def plan_reads(slots: list[Slot], need: int) -> list[list[str]]:
    """Bucket ids in batches, newest `hi` first: each batch holds at least `need`
    of the folder's rows (by the counts), so an unfiltered page is usually one
    round trip; later batches double, as a filter rejects entries."""
    batches: list[list[str]] = [[]]
    rows = 0
    for key, slot in slots:
        batches[-1].append(key)
        rows += slot["n"]
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
        options.append([chain_id(seller_id, f"f{b}") for b in _bands(f.min_followers, f.max_followers)])
    gmv = f.gmv_range()
    if gmv != (None, None):
        options.append([chain_id(seller_id, f"g{b}") for b in _bands(*gmv)])
    return options


def _bands(low: float | None, high: float | None) -> range:
    return range(0 if low is None else band(low), (_BANDS - 1 if high is None else band(high)) + 1)


def cheapest_slots(options: list[list[str]], directories: dict[str, dict[str, Any]], query: EntryQuery, need: int) -> list[Slot]:
    """The buckets that may hold matches, of the option expected to read the fewest
    buckets for `need` rows, newest `hi` first.

    Each option's rows in the folder bound the matches from above, so the
    smallest, `matches`, is the estimate; an option then reads about
    `need / matches` of each of its chains' buckets, but at least one per chain
    (a page is certain only once every chain's newer buckets are read): so
    many thin chains (a wide followers range) lose to the main chain when the
    filter keeps most rows, and win when it keeps few. Ties go to fewer rows."""
    candidates = []
    for chains in options:
        per_chain = [
            [(bucket_id(chain, int(n)), slot) for n, slot in folder_slots(directories.get(chain), query.folder).items() if query.may_hold(slot)]
            for chain in chains
        ]
        slots = [slot for chain_slots in per_chain for slot in chain_slots]
        candidates.append((per_chain, slots, sum(slot["n"] for _, slot in slots)))
    matches = max(1, min(rows for _, _, rows in candidates))

    def cost(candidate: tuple[list[list[Slot]], list[Slot], int]) -> tuple[float, int]:
        per_chain, _, rows = candidate
        return sum(max(1.0, len(chain_slots) * need / matches) for chain_slots in per_chain if chain_slots), rows

    _, best, _ = min(candidates, key=cost)
    return sorted(best, key=lambda item: item[1]["hi"] or 0, reverse=True)


async def read_page(
    slots: list[Slot],
    query: EntryQuery,
    need: int,
    read_buckets: Callable[[list[str]], Awaitable[list[dict[str, Any]]]],
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
        buckets = await read_buckets(batch)
        read += len(batch)
        found = sorted(set(found) | set(candidates(query, buckets)), reverse=True)
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


# --- a fresh layout (rebuild, bench seed) -------------------------------------------------------------


def fresh_layout(docs: list[dict[str, Any]], size: int = BUCKET_SIZE) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Buckets and directories for stored rows of sellers new to the database (each
    row at v 1 and placed in the returned `docs`): every chain's rows by sort key,
    oldest first, `size` per bucket; the head is the bucket after the last."""
    chains: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for doc in docs:
        doc.update(v=1, synced=1, placed={}, stale=[])
        for dimension in dimensions_of(doc):
            chains.setdefault((doc["seller_id"], dimension), []).append(doc)
    buckets, directories = [], []
    for (seller, dimension), rows in chains.items():
        chain = chain_id(seller, dimension)
        rows.sort(key=lambda d: (d["last_activity"], d["_id"]))
        versions: dict[str, int] = {}
        slots: dict[str, dict[str, Any]] = {}
        for n, start in enumerate(range(0, len(rows), size), start=1):
            chunk = rows[start : start + size]
            bucket: dict[str, Any] = {"_id": bucket_id(chain, n), "seller_id": seller, "e": {}, "h": {}, "bv": 1, "keys": len(chunk),
                                      "lo": chunk[0]["last_activity"], "hi": chunk[-1]["last_activity"]}
            for doc in chunk:
                doc["placed"][dimension] = n
                entry = entry_of(doc)
                bucket["e"][doc["creator_id"]] = entry
                for path in contributions(entry):
                    _, folder, name = path.split(".")
                    counters = bucket["h"].setdefault(folder, {})
                    counters[name] = counters.get(name, 0) + 1
            buckets.append(bucket)
            versions[str(n)] = bucket["bv"]
            for folder, slot in summary(bucket).items():
                slots.setdefault(folder, {})[str(n)] = slot
        directories.append({"_id": chain, "head": len(versions) + 1, "v": versions, "f": slots})
    return buckets, directories
