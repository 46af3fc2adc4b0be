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
  creator's rows with one `update_many` on the `creator_id` index.
- `inbox_buckets` / `inbox_directories`: the serving layout, read by `_id`
  only, so a page costs the same on any engine whatever the seller's size.
  After a row's change is stored, `sync` writes its entry (and tombstones)
  with version-guarded updates; a crash in between is repaired by the
  redelivered event, which finds `synced` behind `v`.
"""

from collections.abc import Callable
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from services.common.mongo import insert_once
from services.inbox_projection.domain import (
    Conversation,
    CreatorProfile,
    from_document,
    profile_document,
    profile_fields,
    profile_from_document,
    to_document,
)
from services.inbox_projection.layout import (
    BUCKET_SIZE,
    MAIN,
    Entry,
    EntryQuery,
    bucket_id,
    chain_id,
    chain_options,
    cheapest_slots,
    counter_deltas,
    dimensions_of,
    entry_of,
    folder_counts,
    fresh_layout,
    is_live,
    read_page,
    summary,
    tombstone,
)

WRITE_BATCH = 1000


def _older_stamp(prefix: str, stamp: dict[str, Any]) -> list[dict[str, Any]]:
    """Filter: the stored stamp under `prefix` is older than `stamp` (at, by)."""
    return [{f"{prefix}at": {"$lt": stamp["at"]}}, {f"{prefix}at": stamp["at"], f"{prefix}by": {"$lt": stamp["by"]}}]


class InboxStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.conversations = db["conversations"]
        self.profiles = db["creator_profiles"]
        self.buckets = db["inbox_buckets"]
        self.directories = db["inbox_directories"]

    async def ensure_indexes(self) -> None:
        await self.conversations.create_index("creator_id", name="rows_by_creator")

    # --- rows -----------------------------------------------------------------

    async def load_doc(self, conversation: str) -> dict[str, Any] | None:
        return await self.conversations.find_one({"_id": conversation})

    async def load(self, conversation: str) -> Conversation | None:
        doc = await self.load_doc(conversation)
        return None if doc is None else from_document(doc)

    async def commit(self, current: dict[str, Any] | None, row: Conversation) -> dict[str, Any] | None:
        """Store `row` over `current` (the stored document it was computed from);
        the new document, or None when another writer changed the row first."""
        doc = to_document(row)
        placed = {} if current is None else current["placed"]
        moved = current is None or doc["last_activity"] != current["last_activity"]  # new activity: to the top
        dimensions = dimensions_of(doc)
        heads = await self._heads(row.seller_id, [d for d in dimensions if moved or d not in placed])
        doc["placed"] = {d: heads[d] if d in heads else placed[d] for d in dimensions}
        if current is None:
            doc.update(v=1, synced=0, stale=[])
            return doc if await insert_once(self.conversations, doc) else None
        stale = list(current["stale"])
        stale += [[d, n] for d, n in placed.items() if doc["placed"].get(d) != n and [d, n] not in stale]
        doc.update(v=current["v"] + 1, synced=current["synced"], stale=stale)
        result = await self.conversations.replace_one({"_id": doc["_id"], "v": current["v"]}, doc)
        return doc if result.matched_count else None

    async def sync(self, doc: dict[str, Any]) -> None:
        """Make the layout show the row as `doc` holds it (version `v`)."""
        while (placed := await self._place(doc)) is None:
            doc = await self.load_doc(doc["_id"]) or doc
        doc = placed
        seller, creator, v = doc["seller_id"], doc["creator_id"], doc["v"]
        entry = entry_of(doc)
        for dimension, n in doc["placed"].items():
            await self._write_entry(seller, chain_id(seller, dimension), n, creator, entry)
        for dimension, n in doc["stale"]:
            await self._write_entry(seller, chain_id(seller, dimension), n, creator, tombstone(v))
        await self.conversations.update_one({"_id": doc["_id"], "v": v}, {"$set": {"stale": [], "synced": v}})

    async def _place(self, doc: dict[str, Any]) -> dict[str, Any] | None:
        """`doc` with a bucket in each chain it belongs in: a profile copy changes the
        chains without placing the row (compare-and-set; None if the row changed)."""
        dimensions = dimensions_of(doc)
        if set(doc["placed"]) == set(dimensions):
            return doc
        heads = await self._heads(doc["seller_id"], [d for d in dimensions if d not in doc["placed"]])
        placed = {d: doc["placed"].get(d) or heads[d] for d in dimensions}
        stale = doc["stale"] + [[d, n] for d, n in doc["placed"].items() if d not in placed and [d, n] not in doc["stale"]]
        changed = {"placed": placed, "stale": stale, "v": doc["v"] + 1}
        result = await self.conversations.update_one({"_id": doc["_id"], "v": doc["v"]}, {"$set": changed})
        return {**doc, **changed} if result.matched_count else None

    async def rows_of_creator(self, creator_id: str) -> list[dict[str, Any]]:
        return await self.conversations.find({"creator_id": creator_id}).to_list()

    async def copy_profile(self, creator_id: str, profile: CreatorProfile) -> None:
        """The profile onto every row of the creator that holds an older one."""
        stamp = profile_document(profile)
        await self.conversations.update_many(
            {"creator_id": creator_id, "$or": [{"profile": None}, *_older_stamp("profile.", stamp)]},
            {"$set": profile_fields(profile), "$inc": {"v": 1}},
        )

    # --- the layout -------------------------------------------------------------

    async def _heads(self, seller_id: str, dimensions: list[str]) -> dict[str, int]:
        """The head bucket number of each of the seller's chains (creating their directories)."""
        chains = {chain_id(seller_id, d): d for d in dimensions}
        heads: dict[str, int] = {}
        while missing := [c for c in chains if chains[c] not in heads]:
            found = await self.directories.find({"_id": {"$in": missing}}, {"head": 1}).to_list()
            heads.update({chains[d["_id"]]: d["head"] for d in found})
            for chain in set(missing) - {d["_id"] for d in found}:
                await insert_once(self.directories, {"_id": chain, "head": 1, "s": {}})
        return heads

    async def _write_entry(self, seller_id: str, chain: str, n: int, creator_id: str, entry: Entry | None) -> None:
        """Set the creator's entry in the chain's bucket n unless a newer version is
        there; the bucket's counters change in the same update, conditional on the
        entry it replaces."""
        if entry is None:
            return
        key = bucket_id(chain, n)
        path = f"e.{creator_id}"
        while True:
            bucket = await self.buckets.find_one({"_id": key}, {path: 1})
            if bucket is None:
                await insert_once(self.buckets, {"_id": key, "seller_id": seller_id, "e": {}, "h": {}, "bv": 0, "keys": 0})
                continue
            old = bucket["e"].get(creator_id)
            if old is not None and old["v"] >= entry["v"]:
                return
            update: dict[str, Any] = {
                "$set": {path: entry},
                "$inc": {"bv": 1, "keys": 0 if old is not None else 1, **counter_deltas(old, entry)},
            }
            if is_live(entry):
                update["$max"], update["$min"] = {"hi": entry["t"]}, {"lo": entry["t"]}
            guard = {f"{path}.v": old["v"]} if old is not None else {path: {"$exists": False}}
            # The bucket as it became, or later: all _note needs (mongo-java-server reads the
            # after-image again instead of atomically, MongoDB returns it atomically).
            after = await self.buckets.find_one_and_update(
                {"_id": key, **guard}, update, {"e": 0}, return_document=ReturnDocument.AFTER)
            if after is not None:
                await self._note(chain, n, after)
                return

    async def _note(self, chain: str, n: int, bucket: dict[str, Any]) -> None:
        """The bucket's summary (read after the change, maybe with later ones) into
        the directory unless a later one is there; a full head bucket is followed
        by the next."""
        noted = summary(bucket)
        await self.directories.update_one(
            {"_id": chain, "$or": [{f"s.{n}.bv": {"$lt": noted['bv']}}, {f"s.{n}": {"$exists": False}}]},
            {"$set": {f"s.{n}": noted}},
        )
        if bucket["keys"] >= BUCKET_SIZE:
            await self.directories.update_one({"_id": chain, "head": n}, {"$set": {"head": n + 1}})

    # --- reads ------------------------------------------------------------------

    async def page(self, seller_id: str, query: EntryQuery, need: int) -> list[dict[str, Any]]:
        """Up to `need` rows of the folder and filters after the cursor, in inbox order,
        from the chains of the query holding the fewest rows (layout.py)."""
        options = chain_options(seller_id, query)
        chains = sorted({c for option in options for c in option})
        directories = {d["_id"]: d for d in await self.directories.find({"_id": {"$in": chains}}).to_list()}

        async def read_buckets(keys: list[str]) -> list[dict[str, Any]]:
            return await self.buckets.find({"_id": {"$in": keys}}).to_list()

        async def read_rows(conversations: list[str]) -> list[dict[str, Any]]:
            return await self.conversations.find({"_id": {"$in": conversations}}).to_list()

        return await read_page(cheapest_slots(options, directories, query), query, need, read_buckets, read_rows)

    async def counts(self, seller_id: str) -> dict[str, int]:
        return folder_counts(await self.directories.find_one({"_id": chain_id(seller_id, MAIN)}))

    # --- a fresh database (rebuild) -----------------------------------------------

    async def write_fresh(self, docs: list[dict[str, Any]], progress: Callable[[int], None] = lambda n: None) -> None:
        """Stored rows (`to_document`) of sellers new to the database, with their
        buckets and directories, many per round trip."""
        buckets, directories = fresh_layout(docs)
        for start in range(0, len(docs), WRITE_BATCH):
            await self.conversations.insert_many(docs[start : start + WRITE_BATCH], ordered=False)
            progress(min(start + WRITE_BATCH, len(docs)))
        for start in range(0, len(buckets), 50):
            await self.buckets.insert_many(buckets[start : start + 50], ordered=False)
        if directories:
            await self.directories.insert_many(directories, ordered=False)

    # --- profiles ---------------------------------------------------------------

    async def profile(self, creator_id: str) -> CreatorProfile | None:
        return profile_from_document(await self.profiles.find_one({"_id": creator_id}))

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
