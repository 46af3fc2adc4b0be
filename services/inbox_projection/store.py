"""The inbox read model in MongoDB: rows, creator profiles, and the serving
layout (buckets and directories, see layout.py).

- `conversations`: one row per conversation (`_id` = conversation id), with a
  version `v` that every change raises. A change is a compare-and-set on `v`
  (`replace_one({_id, v})`), so concurrent writers of one row (its
  conversation's topics, its creator's profile, several instances) never lose
  each other's changes: the loser reads again and retries. `placed` is the
  bucket holding the row's entry in each of its chains (`{dimension: n}`),
  `stale` the `[dimension, n]` buckets that may still hold an older one,
  `synced` the version the layout reflects.
- `creator_profiles`: the latest profile per creator; copied onto the
  creator's rows with one `update_many` by `_id`.
- `creator_rows`: each creator's row ids, in `CREATOR_ROW_SHARDS` documents
  per creator (by the seller), written before a new row: so a profile update
  reads its rows by `_id` on any engine (mongo-java-server uses no
  non-unique index, and scanned every row for each update), and a creator in
  millions of conversations stays far below the document size limit.
- `inbox_buckets` / `inbox_directories`: the serving layout, read by `_id`
  only, so a page costs the same on any engine whatever the seller's size.
  After a row's change is stored, its entries (and tombstones) are written
  with version-guarded updates: a fetch's rows together (`commit_each`,
  `sync_each`), or one row at a time (`commit`, `sync`) when another writer
  came first; a crash in between is repaired by the redelivered event, which
  finds `synced` behind `v`.
"""

import zlib
from collections.abc import Callable
from typing import Any

from pymongo import InsertOne, ReplaceOne, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from im_contracts import InboxFolder

from services.common.mongo import all_applied, insert_new, insert_once, upsert_each
from services.inbox_projection.domain import (
    Conversation,
    CreatorProfile,
    ITEM_FIELDS,
    profile_document,
    profile_fields,
    profile_from_document,
    to_document,
)
from services.inbox_projection.layout import (
    MAIN,
    Entry,
    bucket_change,
    bucket_id,
    chain_id,
    dimensions_of,
    empty_bucket,
    empty_directory,
    fresh_layout,
    notes,
    targets_of,
)
from services.inbox_projection.reads import (
    BucketView,
    EntryQuery,
    Kept,
    TESTED_FIELDS,
    Slot,
    chain_options,
    chain_slots,
    cheapest_slots,
    folder_counts,
    read_page,
    view_of,
    view_weight,
)

WRITE_BATCH = 1000
# Views kept for pages (reads.py): buckets' in live entries, about 400 bytes each
# (20 MiB by default), directories' in slots, about 650 bytes each (6.5 MiB).
VIEW_ENTRIES = 50_000
VIEW_SLOTS = 10_000
# What a page reads of a row: what it tests and what it shows.
PAGE_ROW_FIELDS = dict.fromkeys((*TESTED_FIELDS, *ITEM_FIELDS), 1)


def _to_place(current: dict[str, Any] | None, doc: dict[str, Any]) -> list[str]:
    """The chains whose head bucket a row's new version goes to: all of them for a
    new row or new activity (to the top), else those it newly belongs in."""
    if current is None or doc["last_activity"] != current["last_activity"]:
        return dimensions_of(doc)
    return [d for d in dimensions_of(doc) if d not in current["placed"]]


def _older_stamp(prefix: str, stamp: dict[str, Any]) -> list[dict[str, Any]]:
    """Filter: the stored stamp under `prefix` is older than `stamp` (at, by)."""
    return [{f"{prefix}at": {"$lt": stamp["at"]}}, {f"{prefix}at": stamp["at"], f"{prefix}by": {"$lt": stamp["by"]}}]


CREATOR_ROW_SHARDS = 16
ROWS_BACKFILLED = "#backfilled"  # no creator's key: those are `<creator>#<n>` with a non-empty creator


def _shard_key(creator_id: str, shard: int) -> str:
    return f"{creator_id}#{shard}"


def creator_rows_key(creator_id: str, seller_id: str) -> str:
    return _shard_key(creator_id, zlib.crc32(seller_id.encode()) % CREATOR_ROW_SHARDS)


def creator_rows_keys(creator_id: str) -> list[str]:
    return [_shard_key(creator_id, n) for n in range(CREATOR_ROW_SHARDS)]


class InboxStore:
    def __init__(self, db: AsyncDatabase, view_entries: int = VIEW_ENTRIES, view_slots: int = VIEW_SLOTS) -> None:
        self.bucket_views: Kept[BucketView] = Kept(view_entries, view_weight)
        self.directory_views: Kept[Any] = Kept(view_slots, lambda view: 1 + len(view))  # a chain's slots, or counts
        self.conversations = db["conversations"]
        self.profiles = db["creator_profiles"]
        self.buckets = db["inbox_buckets"]
        self.directories = db["inbox_directories"]
        self.creator_rows = db["creator_rows"]

    async def ensure_indexes(self) -> None:
        """Nothing to index beyond `_id`; `creator_rows` filled from the rows once,
        for a database written before it existed."""
        if await self.creator_rows.find_one({"_id": ROWS_BACKFILLED}) is None:
            # A batch size of our own: mongo-java-server does not cap a reply at 16 MiB as MongoDB does.
            rows = self.conversations.find({}, {"creator_id": 1, "seller_id": 1}).batch_size(WRITE_BATCH)
            while batch := await rows.to_list(WRITE_BATCH):
                await self._note_creators(batch)
            await insert_new(self.creator_rows, [{"_id": ROWS_BACKFILLED}])

    async def _note_creators(self, docs: list[dict[str, Any]]) -> None:
        """The rows' ids into their creators' `creator_rows` (before the rows exist)."""
        additions: dict[str, list[str]] = {}
        for doc in docs:
            additions.setdefault(creator_rows_key(doc["creator_id"], doc["seller_id"]), []).append(doc["_id"])
        await upsert_each(self.creator_rows, [({"_id": key}, {"$addToSet": {"rows": {"$each": ids}}}) for key, ids in additions.items()])

    # --- rows -----------------------------------------------------------------

    async def load_doc(self, conversation: str) -> dict[str, Any] | None:
        return await self.conversations.find_one({"_id": conversation})

    async def load_docs(self, conversations: list[str]) -> dict[str, dict[str, Any]]:
        return {d["_id"]: d for d in await self.conversations.find({"_id": {"$in": conversations}}).to_list()}

    async def commit(self, current: dict[str, Any] | None, row: Conversation) -> dict[str, Any] | None:
        """Store `row` over `current` (the stored document it was computed from);
        the new document, or None when another writer changed the row first."""
        stored = await self.commit_each([(current, row)])
        return None if stored is None else stored[0]

    async def commit_each(self, changes: list[tuple[dict[str, Any] | None, Conversation]]) -> list[dict[str, Any]] | None:
        """Store each row over the document it was computed from, with one bulk write
        (compare-and-set on `v`); the new documents, or None when another writer
        changed one of the rows first (the others are stored)."""
        docs = [to_document(row) for _, row in changes]
        moving = [_to_place(current, doc) for (current, _), doc in zip(changes, docs)]
        heads = await self._heads({chain_id(doc["seller_id"], d) for doc, dimensions in zip(docs, moving) for d in dimensions})
        operations: list[InsertOne | ReplaceOne] = []
        for (current, _), doc, dimensions in zip(changes, docs, moving):
            placed = {} if current is None else current["placed"]
            doc["placed"] = {d: heads[chain_id(doc["seller_id"], d)] if d in dimensions else placed[d] for d in dimensions_of(doc)}
            if current is None:
                doc.update(v=1, synced=0, stale=[])
                operations.append(InsertOne(doc))
                continue
            stale = list(current["stale"])
            stale += [[d, n] for d, n in placed.items() if doc["placed"].get(d) != n and [d, n] not in stale]
            doc.update(v=current["v"] + 1, synced=current["synced"], stale=stale)
            operations.append(ReplaceOne({"_id": doc["_id"], "v": current["v"]}, doc))
        await self._note_creators([doc for (current, _), doc in zip(changes, docs) if current is None])
        return docs if await all_applied(self.conversations, operations) else None

    async def sync(self, doc: dict[str, Any]) -> None:
        """Make the layout show the row as `doc` holds it (version `v`), one entry at a time."""
        while (placed := await self._place(doc)) is None:
            doc = await self.load_doc(doc["_id"]) or doc
        doc = placed
        for chain, n, creator, entry in targets_of(doc):
            await self._write_entry(doc["seller_id"], chain, n, creator, entry)
        await self._mark_synced([doc])

    async def sync_each(self, docs: list[dict[str, Any]]) -> None:
        """Make the layout show each row as stored: one read of the buckets, one bulk
        write of their changes (several rows' entries in one bucket make one update),
        one read of their summaries and one bulk write of the directories. When
        another writer changed one of the buckets first, the rows are synced one at
        a time (`sync`, which skips what is already there)."""
        placed = []
        for doc in docs:
            if set(doc["placed"]) == set(dimensions_of(doc)):
                placed.append(doc)
            else:  # a profile moved it to other chains
                await self.sync(doc)
        wanted: dict[tuple[str, int], dict[str, Entry]] = {}  # (chain, n): the entries by creator
        seller_of: dict[str, str] = {}  # bucket id: its seller
        for doc in placed:
            for chain, n, creator, entry in targets_of(doc):
                wanted.setdefault((chain, n), {}).setdefault(creator, entry)
                seller_of[bucket_id(chain, n)] = doc["seller_id"]
        if not wanted:
            await self._mark_synced(placed)
            return
        creators = {creator for entries in wanted.values() for creator in entries}
        found = self.buckets.find({"_id": {"$in": list(seller_of)}}, {f"e.{c}": 1 for c in creators})
        stored = {b["_id"]: b.get("e", {}) for b in await found.to_list()}
        # A bucket created meanwhile by another writer is fine: the guards hold only
        # where its entries are as read.
        await insert_new(self.buckets, [empty_bucket(key, seller) for key, seller in seller_of.items() if key not in stored])
        changed = {
            (chain, n): change for (chain, n), entries in wanted.items()
            if (change := bucket_change(entries, stored.get(bucket_id(chain, n), {}))) is not None
        }
        applied = await all_applied(
            self.buckets, [UpdateOne({"_id": bucket_id(chain, n), **guard}, update) for (chain, n), (guard, update) in changed.items()]
        )
        await self._note_each(list(changed))
        if not applied:
            for doc in placed:
                await self.sync(doc)
            return
        await self._mark_synced(placed)

    async def _mark_synced(self, docs: list[dict[str, Any]]) -> None:
        if docs:
            await self.conversations.bulk_write(
                [UpdateOne({"_id": d["_id"], "v": d["v"]}, {"$set": {"stale": [], "synced": d["v"]}}) for d in docs], ordered=False
            )

    async def _place(self, doc: dict[str, Any]) -> dict[str, Any] | None:
        """`doc` with a bucket in each chain it belongs in: a profile copy changes the
        chains without placing the row (compare-and-set; None if the row changed)."""
        dimensions = dimensions_of(doc)
        if set(doc["placed"]) == set(dimensions):
            return doc
        seller = doc["seller_id"]
        heads = await self._heads({chain_id(seller, d) for d in dimensions if d not in doc["placed"]})
        placed = {d: doc["placed"].get(d) or heads[chain_id(seller, d)] for d in dimensions}
        stale = doc["stale"] + [[d, n] for d, n in doc["placed"].items() if d not in placed and [d, n] not in doc["stale"]]
        changed = {"placed": placed, "stale": stale, "v": doc["v"] + 1}
        result = await self.conversations.update_one({"_id": doc["_id"], "v": doc["v"]}, {"$set": changed})
        return {**doc, **changed} if result.matched_count else None

    async def copy_profile(self, creator_id: str, profile: CreatorProfile) -> list[dict[str, Any]]:
        """The profile onto every row of the creator that holds an older one; the
        creator's rows as they are then (found through `creator_rows`)."""
        rows = [row for doc in await self.creator_rows.find({"_id": {"$in": creator_rows_keys(creator_id)}}).to_list() for row in doc["rows"]]
        if not rows:
            return []
        stamp = profile_document(profile)
        await self.conversations.update_many(
            {"_id": {"$in": rows}, "$or": [{"profile": None}, *_older_stamp("profile.", stamp)]},
            {"$set": profile_fields(profile), "$inc": {"v": 1}},
        )
        return await self.conversations.find({"_id": {"$in": rows}}).to_list()

    # --- the layout -------------------------------------------------------------

    async def _heads(self, chains: set[str]) -> dict[str, int]:
        """The head bucket number of each chain (creating their directories)."""
        heads: dict[str, int] = {}
        while missing := [c for c in chains if c not in heads]:
            found = await self.directories.find({"_id": {"$in": missing}}, {"head": 1}).to_list()
            heads.update({d["_id"]: d["head"] for d in found})
            await insert_new(self.directories, [empty_directory(c) for c in set(missing) - set(heads)])
        return heads

    async def _write_entry(self, seller_id: str, chain: str, n: int, creator_id: str, entry: Entry) -> None:
        """Set the creator's entry in the chain's bucket n unless a newer version is
        there, then note the bucket in the directory (also when the entry was there
        already: a crash may have come between the two)."""
        key = bucket_id(chain, n)
        while True:
            bucket = await self.buckets.find_one({"_id": key}, {f"e.{creator_id}": 1})
            if bucket is None:
                await insert_once(self.buckets, empty_bucket(key, seller_id))
                continue
            change = bucket_change({creator_id: entry}, bucket.get("e", {}))
            if change is None:
                await self._note_each([(chain, n)])
                return
            # The bucket as it became, or later: all a note needs (mongo-java-server reads the
            # after-image again instead of atomically, MongoDB returns it atomically).
            after = await self.buckets.find_one_and_update(
                {"_id": key, **change[0]}, change[1], {"e": 0}, return_document=ReturnDocument.AFTER)
            if after is not None:
                await self._write_notes([(chain, n, after)])
                return

    async def _note_each(self, places: list[tuple[str, int]]) -> None:
        """The summaries of these buckets, read after their change (maybe with later
        ones), into the directories unless later ones are there."""
        if not places:
            return
        keys = {bucket_id(chain, n): (chain, n) for chain, n in places}
        buckets = await self.buckets.find({"_id": {"$in": list(keys)}}, {"e": 0}).to_list()
        await self._write_notes([(*keys[b["_id"]], b) for b in buckets])

    async def _write_notes(self, changed: list[tuple[str, int, dict[str, Any]]]) -> None:
        """Each bucket (chain, n, the bucket without its entries) into its directory."""
        if operations := [UpdateOne(f, u) for chain, n, bucket in changed for f, u in notes(chain, n, bucket)]:
            await self.directories.bulk_write(operations, ordered=False)

    # --- reads ------------------------------------------------------------------

    async def page(self, seller_id: str, query: EntryQuery, need: int) -> list[dict[str, Any]]:
        """Up to `need` rows of the folder and filters after the cursor, in inbox order,
        from the chains of the query expected to read the fewest buckets (reads.py)."""
        options = chain_options(seller_id, query)
        chains = sorted({c for option in options for c in option})
        slots_of = await self._directory_views(chains, query.folder)

        async def read_buckets(slots: list[Slot]) -> list[BucketView]:
            """Kept views as new as their slots, the other buckets read."""
            views = {key: view for key, slot in slots if (view := self.bucket_views.fresh(key, slot.get("v"))) is not None}
            if missing := [key for key, _ in slots if key not in views]:
                for bucket in await self.buckets.find({"_id": {"$in": missing}}).to_list():
                    views[bucket["_id"]] = view = view_of(bucket)
                    self.bucket_views.keep(bucket["_id"], bucket["bv"], view)
            return list(views.values())

        async def read_rows(conversations: list[str]) -> list[dict[str, Any]]:
            return await self.conversations.find({"_id": {"$in": conversations}}, PAGE_ROW_FIELDS).to_list()

        return await read_page(cheapest_slots(options, slots_of, query, need), query, need, read_buckets, read_rows)

    async def counts(self, seller_id: str) -> dict[str, int]:
        main = chain_id(seller_id, MAIN)
        return (await self._directory_views([main], None)).get(main) or folder_counts(None)

    async def _directory_views(self, chains: list[str], folder: InboxFolder | None) -> dict[str, Any]:
        """Each existing chain's slots in `folder` (`chain_slots`), or with no folder
        its counts (`folder_counts`), kept while the directory's `dv` is unchanged:
        one read of the versions, and one of the directories changed since kept."""
        found = await self.directories.find({"_id": {"$in": chains}}, {"dv": 1}).to_list()
        views = {d["_id"]: kept for d in found if (kept := self.directory_views.fresh((d["_id"], folder), d.get("dv"))) is not None}
        if changed := [d["_id"] for d in found if d["_id"] not in views]:
            projection = {"f": 1} if folder is None else {f"f.{folder.value}": 1, "v": 1}
            for directory in await self.directories.find({"_id": {"$in": changed}}, {**projection, "dv": 1}).to_list():
                views[directory["_id"]] = made = folder_counts(directory) if folder is None else chain_slots(directory, folder)
                if directory.get("dv") is not None:  # written before directories had versions: read each time
                    self.directory_views.keep((directory["_id"], folder), directory["dv"], made)
        return views

    # --- a fresh database (rebuild) -----------------------------------------------

    async def write_fresh(self, docs: list[dict[str, Any]], progress: Callable[[int], None] = lambda n: None) -> None:
        """Stored rows (`to_document`) of sellers new to the database, with their
        buckets and directories, many per round trip."""
        buckets, directories = fresh_layout(docs)
        for start in range(0, len(docs), WRITE_BATCH):
            await self._note_creators(docs[start : start + WRITE_BATCH])
            await self.conversations.insert_many(docs[start : start + WRITE_BATCH], ordered=False)
            progress(min(start + WRITE_BATCH, len(docs)))
        for start in range(0, len(buckets), 50):
            await self.buckets.insert_many(buckets[start : start + 50], ordered=False)
        if directories:
            await self.directories.insert_many(directories, ordered=False)

    # --- profiles ---------------------------------------------------------------

    async def profile(self, creator_id: str) -> CreatorProfile | None:
        return profile_from_document(await self.profile_doc(creator_id))

    async def profile_doc(self, creator_id: str) -> dict[str, Any] | None:
        return await self.profiles.find_one({"_id": creator_id})

    async def profiles_of(self, creator_ids: set[str]) -> dict[str, CreatorProfile]:
        found = await self.profiles.find({"_id": {"$in": list(creator_ids)}}).to_list()
        return {doc["_id"]: profile for doc in found if (profile := profile_from_document(doc)) is not None}

    async def insert_profiles(self, profiles: dict[str, CreatorProfile]) -> None:
        if profiles:
            await self.profiles.insert_many(
                [{"_id": creator_id, **profile_document(profile)} for creator_id, profile in profiles.items()], ordered=False
            )

    async def keep_latest_profile(self, creator_id: str, incoming: CreatorProfile) -> CreatorProfile:
        """Store the profile unless a later one is stored; the latest either way."""
        doc = {"_id": creator_id, **profile_document(incoming)}
        while True:
            if (await self.profiles.replace_one({"_id": creator_id, "$or": _older_stamp("", doc)}, doc)).matched_count:
                return incoming
            if await insert_once(self.profiles, doc):
                return incoming
            stored = await self.profile(creator_id)
            if stored is not None and not incoming.newer_than(stored):
                return stored
