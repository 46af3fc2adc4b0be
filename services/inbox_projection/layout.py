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
entry, and raises its version `bv`. The chain's *directory* keeps, per folder,
one slot per bucket holding rows of the folder: the folder's rows, those
counts as bit masks and the bucket's time range `[lo, hi]` (folder first, so
a page reads its folder's slots alone), the version of each bucket its slots
show (`v.<n>`), and its own version `dv`, which grows with every change of it.
How a page reads them is reads.py.
"""

import base64
import zlib
from typing import Any

from im_contracts import InboxFolder

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


def band_range(low: float | None, high: float | None) -> range:
    """The bands a range of values (None: unbounded) falls in."""
    return range(0 if low is None else band(low), (_BANDS - 1 if high is None else band(high)) + 1)


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


def empty_directory(chain: str) -> dict[str, Any]:
    """A chain's directory before its first bucket: `dv` counts its changes."""
    return {"_id": chain, "head": 1, "v": {}, "f": {}, "dv": 0}


def notes(chain: str, n: int, bucket: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Directory changes (filter, update) for a bucket read after a change of it (maybe
    with later ones): its summary unless a later one is noted (`v.<n>`, the bucket's
    version it shows), and the next head when it is full. A directory keeps its
    slots by folder first (`f.<folder>.<n>`), so a page reads its folder's alone."""
    slots = summary(bucket)
    update: dict[str, Any] = {
        "$set": {f"v.{n}": bucket["bv"], **{f"f.{folder}.{n}": slot for folder, slot in slots.items()}}, "$inc": {"dv": 1},
    }
    if emptied := [f.value for f in FOLDERS if f.value not in slots]:
        update["$unset"] = {f"f.{folder}.{n}": "" for folder in emptied}
    found = [({"_id": chain, "$or": [{f"v.{n}": {"$lt": bucket["bv"]}}, {f"v.{n}": {"$exists": False}}]}, update)]
    if bucket["keys"] >= BUCKET_SIZE:
        found.append(({"_id": chain, "head": n}, {"$set": {"head": n + 1}, "$inc": {"dv": 1}}))
    return found


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
        directories.append({"_id": chain, "head": len(versions) + 1, "v": versions, "f": slots, "dv": 1})
    return buckets, directories
