"""MongoDB access through PyMongo's async API (Motor's official successor), and one
small write pattern: an insert that stands if it is the first."""

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

