"""One service's wiring: Kafka broker, MongoDB database, decision store,
publisher, seller-access view, metrics, HTTP app. Services build one of these
in their ``app`` module and register their subscribers and routes on it."""

import asyncio
import contextlib
from contextvars import ContextVar
import gc
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import uvicorn
from aiokafka import AIOKafkaConsumer, TopicPartition
from fastapi import APIRouter, FastAPI
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.middlewares import AckPolicy

from im_contracts import ModerationEvent, SellerAccessChanged
from im_contracts.topics import MODERATION_EVENTS

from services.common.access import SellerAccessView
from services.common.batching import (
    AfterPublish,
    BackgroundCommits,
    BatchConsumer,
    BatchHandler,
    OnRebalance,
    safe_headers_parser,
    straight_to,
)
from services.common.consuming import InvalidInputHook, consumer_middleware, json_object_decoder
from services.common.errors import is_broken_producer, is_transient
from services.common.health import Health, RecordTracker
from services.common.http import create_http_app
from services.common.idempotency import DecisionStore
from services.common.kafka_client import broker_security
from services.common.logging import configure_logging, get_logger
from services.common.metrics import ServiceMetrics
from services.common.mongo import create_mongo_client
from services.common.outbox import Publisher
from services.common.settings import ServiceSettings

T = TypeVar("T")
# Set while services.common.asyncapi builds a runtime only to document it.
DOCUMENTING: ContextVar[bool] = ContextVar("documenting", default=False)
MAX_RECORD_BYTES = 4 * 1024 * 1024  # room for a dead letter carrying a 1 MiB body as base64


class ServiceRuntime:
    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.log = get_logger(f"im.{settings.service_name}")
        self.metrics = ServiceMetrics()
        self.health = Health()
        self.records = RecordTracker(settings.stuck_record_seconds)
        self.stopping = False
        self.mongo = create_mongo_client(settings, self.metrics)
        self.db = self.mongo[settings.database_name]
        self.broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            security=broker_security(settings),
            client_id=f"im-{settings.service_name}",
            acks="all",
            enable_idempotence=True,
            linger_ms=settings.producer_linger_ms,
            request_timeout_ms=settings.kafka_request_timeout_ms,
            max_request_size=MAX_RECORD_BYTES,
            allow_auto_create_topics=False,
            graceful_timeout=settings.graceful_shutdown_seconds,
            # FastStream's own "Received"/"Processed" lines at DEBUG: the consumer
            # middleware writes one line per record with its outcome instead.
            log_level=logging.DEBUG,
            middlewares=[
                KafkaPrometheusMiddleware(registry=self.metrics.registry, app_name=settings.service_name),
                consumer_middleware(self),
            ],
        )
        self.publisher = Publisher(self.broker)
        self.decisions = DecisionStore(self.db["decisions"])
        self.access = SellerAccessView(self.db["seller_access"])
        self.invalid_input_hooks: dict[str, InvalidInputHook] = {}
        self._startup: list[Callable[[], Awaitable[None]]] = [self.decisions.ensure_indexes]
        self._alongside: list[tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]] = []
        self._lag_task: asyncio.Task[None] | None = None
        self._commits: list[BackgroundCommits] = []
        # What to do when the process can no longer work correctly (a broken
        # producer, a start that failed for good): run_service restarts the
        # process, in-process tests just see it in /readyz.
        self.on_fatal: Callable[[str], None] = self.health.mark_degraded
        self._decoder = json_object_decoder(settings.max_message_bytes)
        self.http_app: FastAPI = create_http_app(self, [])
        self._follow_seller_access()

    # --- wiring -----------------------------------------------------------

    def current_message(self) -> KafkaMessage:
        """The record a handler is handling. Handlers take it from here, not as a
        `msg: KafkaMessage` parameter: fast_depends resolves such a parameter with a
        sync call in a worker thread, a thread hop per record (run_in_threadpool in
        bench.profile's stacks)."""
        return self.broker.context.get_local("message")

    def subscriber(self, *topics: str, purpose: str = "", **options: Any) -> Any:
        """A FastStream subscriber, one record at a time, that commits only after
        the handler is done (commands and the events that keep a service's facts)."""
        return self.broker.subscriber(
            *topics,
            group_id=self.settings.group_id(purpose),
            ack_policy=AckPolicy.NACK_ON_ERROR,
            decoder=self._decoder,
            auto_offset_reset=self.settings.auto_offset_reset,
            **options,
        )

    def batch_subscriber(
        self, topic: str, model: Any, handle: BatchHandler[Any], *, title: str,
        purpose: str = "", after_publish: AfterPublish[Any] | None = None,
        on_rebalance: Callable[[], None] | None = None,
    ) -> Any:
        """A send-path subscriber handed one fetch at a time (services.common.batching);
        a fetch's offsets are committed (in the background) once the whole batch is handled.
        `on_rebalance` is called whenever the consumer's partitions are revoked or assigned."""
        if DOCUMENTING.get():
            # The AsyncAPI document shows what each record of the topic carries.
            async def one_record(message: model, msg: KafkaMessage) -> None: ...  # type: ignore[valid-type]

            return self.broker.subscriber(topic, group_id=self.settings.group_id(purpose), title=title)(one_record)
        batch = BatchConsumer(self, model, handle, after_publish)
        subscriber = self.broker.subscriber(
            topic,
            group_id=self.settings.group_id(purpose),
            batch=True,
            max_records=self.settings.batch_max_records,
            # FastStream sleeps this long again after an empty fetch, which also lets a
            # batch gather. Going around the sleep was tried (bench/PROFILE.md, evening
            # of 2026-12-01): no effect shown beyond the bench's run-to-run spread.
            batch_timeout_ms=self.settings.pipeline_fetch_wait_ms,
            fetch_max_wait_ms=self.settings.pipeline_broker_wait_ms,  # why not aiokafka's 500: see the setting
            ack_policy=AckPolicy.NACK_ON_ERROR,
            parser=safe_headers_parser,
            decoder=_raw_values,
            auto_offset_reset=self.settings.auto_offset_reset,
            listener=None if on_rebalance is None else OnRebalance(on_rebalance),
            title=title,
        )

        @subscriber
        async def consume(values: Any) -> None:  # FastStream's in-memory test broker calls this
            msg = self.current_message()
            await batch.consume(msg.raw_message, getattr(msg, "consumer", None))

        commits = BackgroundCommits(self.settings.pipeline_commit_interval_ms / 1000)
        self._commits.append(commits)
        subscriber.consume_one = straight_to(subscriber, batch, commits)
        return consume

    def on_startup(self, step: Callable[[], Awaitable[None]]) -> None:
        """Run a step (typically index creation) before consuming starts."""
        self._startup.append(step)

    def alongside(self, start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]]) -> None:
        """Work that runs beside the subscribers: started before them (waiting out
        outages), stopped once they are drained. The in-memory test broker, which
        runs only `prepare`, never starts it."""
        self._alongside.append((start, stop))

    def serve(self, *routers: APIRouter) -> None:
        self.http_app = create_http_app(self, routers)

    def _follow_seller_access(self) -> None:
        @self.subscriber(MODERATION_EVENTS, purpose="access", title=f"{self.settings.service_name}:seller-access")
        async def follow_seller_access(event: ModerationEvent) -> None:
            if isinstance(event, SellerAccessChanged):
                await self.access.apply(event)

    # --- lifecycle --------------------------------------------------------

    async def wait_out(self, operation: Callable[[], Awaitable[T]], topic: str | None = None) -> T:
        """Run an operation, waiting out broker and database outages (I4); a
        broken producer is fatal to the process. `topic`: the record being
        handled, whose retries are counted."""
        backoff = self.settings.retry_initial_backoff_seconds
        while True:
            try:
                return await operation()
            except Exception as exc:
                if is_broken_producer(exc):
                    self.on_fatal(f"{type(exc).__name__}: {exc}")
                if not is_transient(exc) or self.stopping:
                    raise
                self.health.mark_degraded(f"{type(exc).__name__}: {exc}")
                if topic is not None:
                    self.metrics.transient_retries.labels(topic).inc()
                self.log.warning("waiting out an outage", error=str(exc), backoff=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.retry_max_backoff_seconds)

    async def prepare(self) -> None:
        """The startup steps (indexes), waiting out outages; start() runs them first."""
        for step in self._startup:
            await self.wait_out(step)

    async def start(self) -> None:
        self.stopping = False
        await self.prepare()
        for start, _ in self._alongside:
            await self.wait_out(start)
        await self.wait_out(self.broker.start)
        self.health.mark_recovered()
        self._lag_task = asyncio.create_task(self._refresh_lag())
        self.log.info("service started", database=self.settings.database_name)

    async def stop(self) -> None:
        """Stop fetching, let in-flight handlers finish and commit, then close."""
        self.stopping = True
        if self._lag_task is not None:
            self._lag_task.cancel()
        # Drain before FastStream's stop: a concurrent subscriber closes its
        # consumers before waiting for its handlers, whose commits would then fail.
        subscribers = list(self.broker.subscribers)
        for sub in subscribers:
            sub.running = False  # records fetched from now on are left for the next owner
        await asyncio.gather(*(
            sub.lock.wait_release(self.settings.graceful_shutdown_seconds)
            for sub in subscribers
            if hasattr(sub.lock, "wait_release")
        ))
        with contextlib.suppress(TimeoutError):  # Kafka away: what is not committed is handed again
            await asyncio.wait_for(asyncio.gather(*(commits.flush() for commits in self._commits)),
                                   self.settings.graceful_shutdown_seconds)
        for _, stop in reversed(self._alongside):
            await stop()
        await self.broker.stop()
        await self.mongo.close()
        self.log.info("service stopped")

    async def wait_until_assigned(self, timeout: float = 60.0) -> None:
        """Block until every subscriber's group has settled on this instance
        (tests publish after this, so nothing is skipped by a late rebalance)."""
        async def settled() -> None:
            while not all(group_settled(consumers_of(sub)) for sub in self.broker.subscribers):
                await asyncio.sleep(0.1)
            for sub in self.broker.subscribers:
                await resolve_positions(consumers_of(sub))

        await asyncio.wait_for(settled(), timeout)

    async def _refresh_lag(self) -> None:
        """Keep im_consumer_lag (log end minus position) per owned partition."""
        gauge = self.metrics.consumer_lag
        while True:
            await asyncio.sleep(self.settings.lag_refresh_seconds)
            gauge.clear()
            for sub in self.broker.subscribers:
                for consumer in consumers_of(sub):
                    for tp in consumer.assignment():
                        end = consumer.highwater(tp)
                        if end is None:
                            continue
                        try:
                            position = await asyncio.wait_for(consumer.position(tp), 1)
                        except Exception:  # a partition moving away mid-rebalance
                            continue
                        gauge.labels(sub.group_id, tp.topic, str(tp.partition)).set(max(0, end - position))

    async def readiness(self) -> dict[str, dict[str, Any]]:
        checks: dict[str, dict[str, Any]] = {}
        try:
            await asyncio.wait_for(self.mongo.admin.command("ping"), 2)
            checks["mongodb"] = {"ok": True}
        except TimeoutError:
            checks["mongodb"] = {"ok": False, "error": "the database did not answer a ping within 2 s"}
        except Exception as exc:  # readiness reports, never raises
            checks["mongodb"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        kafka_ok = await self.broker.ping(timeout=2)
        checks["kafka"] = {"ok": bool(kafka_ok)}
        running = [bool(consumers_of(sub)) and sub.running for sub in self.broker.subscribers]
        checks["consumers"] = {"ok": bool(running) and all(running), "running": sum(running), "total": len(running)}
        checks["processing"] = {"ok": self.health.degraded_reason is None, "error": self.health.degraded_reason}
        stuck = self.records.stuck()
        checks["records"] = {"ok": not stuck, "stuck": stuck}
        return checks


async def _raw_values(msg: Any) -> Any:
    """Batch bodies are decoded record by record in services.common.batching."""
    return None


def consumers_of(subscriber: Any) -> list[AIOKafkaConsumer]:
    """The Kafka consumers behind a subscriber: one, or one per worker."""
    group = getattr(subscriber, "consumer_subgroup", None)
    if group:
        return list(group)
    return [subscriber.consumer] if subscriber.consumer is not None else []


def group_settled(consumers: list[AIOKafkaConsumer]) -> bool:
    """True once the consumers of one group own every partition of their topics
    exactly once, each owning some (when there are enough partitions)."""
    if not consumers:
        return False
    assignments = [consumer.assignment() for consumer in consumers]
    owned = set().union(*assignments)
    expected = {
        TopicPartition(topic, partition)
        for topic in consumers[0].subscription()
        for partition in consumers[0].partitions_for_topic(topic) or ()
    }
    busy = sum(1 for assignment in assignments if assignment)
    return bool(expected) and owned == expected and sum(map(len, assignments)) == len(owned) and busy >= min(len(consumers), len(expected))


async def resolve_positions(consumers: list[AIOKafkaConsumer]) -> None:
    """Resolve every owned partition's position (a "latest" group then misses nothing published after)."""
    for consumer in consumers:
        for tp in consumer.assignment():
            await consumer.position(tp)


def _spare_the_startup_objects_from_gc() -> None:
    """Decoding a large document (an inbox bucket or directory: thousands of dicts)
    triggers collections half-way, which promote the half-built document; the
    full collections that follow scanned every object the process made at start
    (modules, models, routes): 15-60 ms pauses a few times a second under reads.
    Frozen, those objects are never scanned again; a larger first generation
    promotes less."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)


def run_service(create_runtime: Callable[[], ServiceRuntime]) -> None:
    """Entry point of ``python -m services.<name>``: JSON logs, HTTP on the
    service's port, graceful shutdown on SIGTERM/SIGINT."""
    runtime = create_runtime()
    settings = runtime.settings
    configure_logging(settings.service_name, settings.log_level)
    _spare_the_startup_objects_from_gc()

    def restart(reason: str) -> None:
        """Shut down gracefully (nothing uncommitted is lost); the supervisor
        starts a fresh process with a fresh producer."""
        runtime.health.mark_degraded(reason)
        if not runtime.stopping:
            runtime.log.critical("cannot go on; shutting down to be restarted", reason=reason)
            os.kill(os.getpid(), signal.SIGTERM)

    runtime.on_fatal = restart
    uvicorn.run(
        runtime.http_app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        loop="uvloop",
        http="httptools",
        timeout_graceful_shutdown=int(settings.graceful_shutdown_seconds),
    )


__all__: Sequence[str] = ("ServiceRuntime", "consumers_of", "group_settled", "resolve_positions", "run_service")
