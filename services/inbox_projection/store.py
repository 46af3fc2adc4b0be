"""The inbox read model: one row per conversation, creator profiles, row latches,
and each creator's list of its rows (slots, see slots.py).

Indexes, and the queries each one serves (a real MongoDB picks them; FerretDB
v1's SQLite backend pushes no filter but `_id` down, and its explain() only
shows a table scan, so the mapping is documented here and checked in
tests/unit/inbox_projection/test_query.py):

- `inbox_by_folder` (seller_id, folders, last_activity↓, _id↓, followers,
  sales_gmv_30d, main_category): every folder listing, newest first, with any
  follower / sales GMV / category filter — equality on seller and folder, the
  sort read in index order, the filters checked on index keys (equality, sort,
  range); the counts per folder (one aggregation) match on its seller_id prefix.
- `inbox_by_category` (seller_id, folders, main_category, last_activity↓, _id↓,
  followers, sales_gmv_30d): listings filtered by one or more categories, where
  the category equality narrows the scan first (one index range per category,
  merged in sort order).

The rows a profile update must reach are not found by `creator_id` (on
FerretDB v1 that filter reads the whole collection) but through the creator's
slots, read by `_id` only (slots.py).
"""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.common.mongo import Hint, insert_once
from services.inbox_projection.domain import (
    Conversation,
    CreatorProfile,
    from_document,
    profile_document,
    profile_from_document,
    to_document,
)
from services.inbox_projection.query import SORT
from services.inbox_projection.slots import assign_slots, slot_id, walk_slots

INBOX_INDEXES: dict[str, list[tuple[str, int]]] = {
    "inbox_by_folder": [
        ("seller_id", ASCENDING),
        ("folders", ASCENDING),
        ("last_activity", DESCENDING),
        ("_id", DESCENDING),
        ("followers", ASCENDING),
        ("sales_gmv_30d", ASCENDING),
        ("main_category", ASCENDING),
    ],
    "inbox_by_category": [
        ("seller_id", ASCENDING),
        ("folders", ASCENDING),
        ("main_category", ASCENDING),
        ("last_activity", DESCENDING),
        ("_id", DESCENDING),
        ("followers", ASCENDING),
        ("sales_gmv_30d", ASCENDING),
    ],
}

LATCH_LEASE = timedelta(seconds=30)


class Latches:
    """Mutual exclusion per row across instances, by unique insert.

    FerretDB v1 applies updates as read-modify-write of the whole document, so
    two concurrent updates of one row lose each other's changes, even of
    different fields. A row's conversation events and its creator's profile
    updates arrive on different partitions, so each row change is made while
    holding the row's latch. A latch left by a crashed holder lapses after its
    lease.
    """

    def __init__(self, db: AsyncDatabase, lease: timedelta = LATCH_LEASE) -> None:
        self._collection = db["latches"]
        self._lease = lease

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        token = uuid.uuid4().hex
        pause = 0.002
        while True:
            now = datetime.now(UTC)
            try:
                await self._collection.insert_one({"_id": key, "token": token, "expires_at": now + self._lease})
                break
            except DuplicateKeyError:
                holder = await self._collection.find_one({"_id": key})
                if holder is not None and holder["expires_at"] <= now:
                    await self._collection.delete_one({"_id": key, "token": holder["token"]})
                    continue
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.05)
        try:
            yield
        finally:
            await self._collection.delete_one({"_id": key, "token": token})


class InboxStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.conversations = db["conversations"]
        self.profiles = db["creator_profiles"]
        self.latches = Latches(db)
        self.creator_rows = db["creator_rows"]  # slots: {_id: "<creator_id>#<n>", conversation_id}
        self.creator_row_heads = db["creator_row_heads"]  # hints: {_id: creator_id, n}
        self.last_slot_hint = Hint(self.creator_row_heads, "n")  # every slot up to it is taken
        self.slotted = db["slotted_conversations"]  # markers: {_id: conversation_id}

    async def ensure_indexes(self) -> None:
        for name, keys in INBOX_INDEXES.items():
            await self.conversations.create_index(keys, name=name)

    # --- rows -----------------------------------------------------------------

    async def load(self, conversation: str) -> Conversation | None:
        doc = await self.conversations.find_one({"_id": conversation})
        return None if doc is None else from_document(doc)

    async def save(self, row: Conversation) -> None:
        doc = to_document(row)
        await self.conversations.replace_one({"_id": doc["_id"]}, doc, upsert=True)

    async def insert_rows(self, rows: list[Conversation], heads: dict[str, int]) -> None:
        """Rows for a fresh database (the rebuild), many per round trip, with their
        creators' slots, markers and head hints written first. `heads` (creator ->
        last slot number used) carries the numbering from one call to the next."""
        if not rows:
            return
        slots = assign_slots(((row.creator_id, row.conversation_id) for row in rows), heads)
        await self.creator_rows.insert_many(
            [{"_id": slot_id(creator_id, n), "conversation_id": conversation} for creator_id, n, conversation in slots],
            ordered=False,
        )
        await self.slotted.insert_many([{"_id": conversation} for _, _, conversation in slots], ordered=False)
        await self.creator_row_heads.bulk_write(
            [UpdateOne({"_id": creator_id}, {"$max": {"n": heads[creator_id]}}, upsert=True) for creator_id in {c for c, _, _ in slots}],
            ordered=False,
        )
        await self.conversations.insert_many([to_document(row) for row in rows], ordered=False)

    # --- each creator's rows (slots.py) ----------------------------------------------

    async def ensure_slot(self, creator_id: str, conversation: str) -> None:
        """Give a conversation a slot in its creator's list unless its marker says it
        has one. Called under the row's latch before the row is first saved."""
        if await self.slotted.find_one({"_id": conversation}) is not None:
            return
        await self.claim_slot(creator_id, conversation)
        await insert_once(self.slotted, {"_id": conversation})  # else a holder whose latch lapsed did it too: two slots, listing dedups

    async def claim_slot(self, creator_id: str, conversation: str) -> int:
        """The next free slot of the creator, taken by unique insert; its number."""
        n = await self.last_slot_hint.get(creator_id) + 1
        collisions = 0
        while True:
            try:
                await self.creator_rows.insert_one({"_id": slot_id(creator_id, n), "conversation_id": conversation})
                break
            except DuplicateKeyError:
                n += 1
                collisions += 1
                if collisions % 4 == 0:
                    # Many claimers at once: every slot up to the hint is taken,
                    # so jump to the hint the winners have raised meanwhile.
                    n = max(n, await self.last_slot_hint.get(creator_id) + 1)
        await self.last_slot_hint.raise_to(creator_id, n)
        return n

    async def conversations_of(self, creator_id: str) -> list[str]:
        """Every conversation of the creator that held a slot when the call started
        (some may have no row yet), each once, by `_id` reads only."""
        hint = await self.last_slot_hint.get(creator_id)

        async def read(numbers: list[int]) -> dict[int, str]:
            docs = await asyncio.gather(*(self.creator_rows.find_one({"_id": slot_id(creator_id, n)}) for n in numbers))
            return {n: doc["conversation_id"] for n, doc in zip(numbers, docs, strict=True) if doc is not None}

        return await walk_slots(read, hint)


    async def rows(self, query: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        return await self.conversations.find(query).sort(SORT).limit(limit).to_list()

    async def aggregate(self, pipeline: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return await (await self.conversations.aggregate(pipeline)).to_list()

    # --- profiles ---------------------------------------------------------------

    async def profile(self, creator_id: str) -> CreatorProfile | None:
        return profile_from_document(await self.profiles.find_one({"_id": creator_id}))

    async def insert_profiles(self, profiles: dict[str, CreatorProfile]) -> None:
        if profiles:
            await self.profiles.insert_many(
                [{"_id": creator_id, **profile_document(profile)} for creator_id, profile in profiles.items()], ordered=False
            )

    async def save_profile(self, creator_id: str, profile: CreatorProfile) -> None:
        await self.profiles.replace_one({"_id": creator_id}, {"_id": creator_id, **profile_document(profile)}, upsert=True)
