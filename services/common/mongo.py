"""MongoDB access through PyMongo's async API (Motor's official successor), and two
small write patterns: an insert that stands if it is the first, and `_id`-keyed hints."""

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from services.common.settings import ServiceSettings


def create_mongo_client(settings: ServiceSettings) -> AsyncMongoClient:
    # Short selection timeout: an outage surfaces as a transient error the
    # consumer retries with backoff, instead of one call hanging for 30 s.
    return AsyncMongoClient(
        settings.mongodb_uri,
        tz_aware=True,
        serverSelectionTimeoutMS=5_000,
        connectTimeoutMS=5_000,
        appname=settings.service_name,
    )


async def insert_once(collection: AsyncCollection, doc: dict[str, Any]) -> bool:
    """Insert unless the `_id` (or another unique key) exists; True if this call
    inserted it: the first writer wins."""
    try:
        await collection.insert_one(doc)
        return True
    except DuplicateKeyError:
        return False


class Hint:
    """A number per key, read and raised by `_id` alone: a shortcut to where a
    walk over unique-insert slots should start (a conversation's last seq, a
    subject's latest version, a pool's highest unit, a creator's last slot).

    Raised with `$max` after the fact it notes was stored, so it is never above
    the truth; a crash may skip one, so it may lag. A hint only saves lookups:
    the unique inserts decide."""

    def __init__(self, collection: AsyncCollection, field: str) -> None:
        self.collection = collection
        self.field = field

    async def get(self, key: str, default: int = 0) -> int:
        doc = await self.collection.find_one({"_id": key})
        return doc[self.field] if doc else default

    async def raise_to(self, key: str, value: int) -> None:
        try:
            await self.collection.update_one({"_id": key}, {"$max": {self.field: value}}, upsert=True)
        except DuplicateKeyError:
            pass  # a concurrent first upsert created it: the hint is only a shortcut
