"""MongoDB access through PyMongo's async API (Motor's official successor), and one
few write patterns: an insert that stands if it is the first, a bulk write of
conditional changes that says whether all of them applied."""

from typing import Any

from pymongo import AsyncMongoClient, InsertOne, ReplaceOne, UpdateOne, monitoring
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.common.metrics import ServiceMetrics
from services.common.settings import ServiceSettings

DUPLICATE_KEY = 11000


class CommandMetrics(monitoring.CommandListener):
    """Each command's count and round-trip time into /metrics, by command and
    collection: what a stage costs the database, per message, in bench.profile."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self._metrics = metrics
        self._sent: dict[tuple[Any, int], tuple[Any, Any]] = {}  # (server address, request id) -> its two series
        self._series: dict[tuple[str, str], tuple[Any, Any]] = {}  # labels() is a locked lookup: once per label pair

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        target = event.command.get(event.command_name)
        labels = (event.command_name, target if isinstance(target, str) else "")
        if (series := self._series.get(labels)) is None:
            series = self._series[labels] = (self._metrics.database_commands.labels(*labels), self._metrics.database_seconds.labels(*labels))
        self._sent[event.connection_id, event.request_id] = series

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._answered(event)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._answered(event)

    def _answered(self, event: monitoring.CommandSucceededEvent | monitoring.CommandFailedEvent) -> None:
        if (series := self._sent.pop((event.connection_id, event.request_id), None)) is not None:
            commands, seconds = series
            commands.inc()
            seconds.inc(event.duration_micros / 1e6)


def create_mongo_client(settings: ServiceSettings, metrics: ServiceMetrics | None = None) -> AsyncMongoClient:
    # Short selection timeout: an outage surfaces as a transient error the
    # consumer retries with backoff, instead of one call hanging for 30 s.
    return AsyncMongoClient(
        settings.mongodb_uri,
        tz_aware=True,
        serverSelectionTimeoutMS=5_000,
        connectTimeoutMS=5_000,
        appname=settings.service_name,
        event_listeners=[CommandMetrics(metrics)] if metrics is not None else [],
    )


async def insert_once(collection: AsyncCollection, doc: dict[str, Any]) -> bool:
    """Insert unless the `_id` (or another unique key) exists; True if this call
    inserted it: the first writer wins."""
    try:
        await collection.insert_one(doc)
        return True
    except DuplicateKeyError:
        return False


async def insert_new(collection: AsyncCollection, docs: list[dict[str, Any]]) -> list[Any]:
    """One unordered insert; the `_id`s of the documents that already existed (each
    insert stands if it is the first). Any other error is raised."""
    if not docs:
        return []
    try:
        await collection.insert_many(docs, ordered=False)
        return []
    except BulkWriteError as exc:
        errors = exc.details["writeErrors"]
        if any(error["code"] != DUPLICATE_KEY for error in errors):
            raise
        return [docs[error["index"]]["_id"] for error in errors]


async def upsert_each(collection: AsyncCollection, changes: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """Each (filter keyed by `_id`, update) as an upsert, in one unordered bulk write.
    A filter that misses an existing document makes its upsert a duplicate key
    (MongoDB also answers a racing first upsert so): those updates are tried once
    more on the documents that exist now."""
    if not changes:
        return
    try:
        await collection.bulk_write([UpdateOne(f, u, upsert=True) for f, u in changes], ordered=False)
    except BulkWriteError as exc:
        errors = exc.details["writeErrors"]
        if any(error["code"] != DUPLICATE_KEY for error in errors):
            raise
        await collection.bulk_write([UpdateOne(*changes[error["index"]]) for error in errors], ordered=False)


async def all_applied(collection: AsyncCollection, operations: list[InsertOne | UpdateOne | ReplaceOne]) -> bool:
    """One unordered bulk write; False when one of its changes met a document
    changed meanwhile (its filter matched nothing, or its insert a document
    inserted meanwhile)."""
    if not operations:
        return True
    updates = sum(1 for operation in operations if not isinstance(operation, InsertOne))
    try:
        result = await collection.bulk_write(operations, ordered=False)
    except BulkWriteError as exc:
        if any(error["code"] != DUPLICATE_KEY for error in exc.details["writeErrors"]):
            raise
        return False
    return result.matched_count == updates
