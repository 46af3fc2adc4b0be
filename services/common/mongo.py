"""MongoDB access through PyMongo's async API (Motor's official successor)."""

from pymongo import AsyncMongoClient

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

