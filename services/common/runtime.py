"""One service's wiring: Kafka broker, MongoDB database, decision store,
publisher, seller-access view, metrics, HTTP app. Services build one of these
in their ``app`` module and register their subscribers and routes on it."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import uvicorn
from fastapi import APIRouter, FastAPI
from faststream.kafka import KafkaBroker
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.middlewares import AckPolicy

from im_contracts import ModerationEvent, SellerAccessChanged
from im_contracts.topics import MODERATION_EVENTS

from services.common.access import SellerAccessView
from services.common.consuming import InvalidInputHook, consumer_middleware, json_object_decoder
from services.common.errors import is_transient
from services.common.http import create_http_app
from services.common.idempotency import DecisionStore
from services.common.logging import configure_logging, get_logger
from services.common.metrics import ServiceMetrics
from services.common.mongo import create_mongo_client
from services.common.outbox import Publisher
from services.common.settings import ServiceSettings

T = TypeVar("T")
MAX_RECORD_BYTES = 4 * 1024 * 1024  # room for a dead letter carrying a 1 MiB body as base64


class Health:
    """The last transient failure seen while consuming, for /readyz."""

    def __init__(self) -> None:
        self.degraded_reason: str | None = None

    def mark_degraded(self, reason: str) -> None:
        self.degraded_reason = reason

    def mark_recovered(self) -> None:
        self.degraded_reason = None


class ServiceRuntime:
    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.log = get_logger(f"im.{settings.service_name}")
        self.metrics = ServiceMetrics()
        self.health = Health()
        self.stopping = False
        self.mongo = create_mongo_client(settings)
        self.db = self.mongo[settings.database_name]
        self.broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            client_id=f"im-{settings.service_name}",
            acks="all",
            enable_idempotence=True,
            linger_ms=settings.producer_linger_ms,
            max_request_size=MAX_RECORD_BYTES,
            allow_auto_create_topics=False,
            graceful_timeout=settings.graceful_shutdown_seconds,
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
        self._decoder = json_object_decoder(settings.max_message_bytes)
        self.http_app: FastAPI = create_http_app(self, [])
        self._follow_seller_access()

    # --- wiring -----------------------------------------------------------

    def subscriber(self, *topics: str, purpose: str = "", **options: Any) -> Any:
        """A FastStream subscriber that commits only after the handler is done."""
        return self.broker.subscriber(
            *topics,
            group_id=self.settings.group_id(purpose),
            ack_policy=AckPolicy.NACK_ON_ERROR,
            decoder=self._decoder,
            auto_offset_reset=self.settings.auto_offset_reset,
            **options,
        )

    def on_startup(self, step: Callable[[], Awaitable[None]]) -> None:
        """Run a step (typically index creation) before consuming starts."""
        self._startup.append(step)

    def serve(self, *routers: APIRouter) -> None:
        self.http_app = create_http_app(self, routers)

    def _follow_seller_access(self) -> None:
        @self.subscriber(MODERATION_EVENTS, purpose="access", title=f"{self.settings.service_name}:seller-access")
        async def follow_seller_access(event: ModerationEvent) -> None:
            if isinstance(event, SellerAccessChanged):
                await self.access.apply(event)

    # --- lifecycle --------------------------------------------------------

    async def wait_out(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run an operation, waiting out broker and database outages (I4)."""
        backoff = self.settings.retry_initial_backoff_seconds
        while True:
            try:
                return await operation()
            except Exception as exc:
                if not is_transient(exc) or self.stopping:
                    raise
                self.health.mark_degraded(f"{type(exc).__name__}: {exc}")
                self.log.warning("waiting out an outage", error=str(exc), backoff=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.retry_max_backoff_seconds)

    async def start(self) -> None:
        self.stopping = False
        for step in self._startup:
            await self.wait_out(step)
        await self.wait_out(self.broker.start)
        self.health.mark_recovered()
        self.log.info("service started", database=self.settings.database_name)

    async def stop(self) -> None:
        """Stop fetching, let in-flight handlers finish and commit, then close."""
        self.stopping = True
        await self.broker.stop()
        await self.mongo.close()
        self.log.info("service stopped")

    async def wait_until_assigned(self, timeout: float = 60.0) -> None:
        """Block until every subscriber owns partitions (tests publish after this)."""
        async def all_assigned() -> None:
            while not all(
                sub.consumer is not None and sub.consumer.assignment()
                for sub in self.broker.subscribers
            ):
                await asyncio.sleep(0.1)

        await asyncio.wait_for(all_assigned(), timeout)

    async def readiness(self) -> dict[str, dict[str, Any]]:
        checks: dict[str, dict[str, Any]] = {}
        try:
            await asyncio.wait_for(self.mongo.admin.command("ping"), 2)
            checks["mongodb"] = {"ok": True}
        except Exception as exc:  # readiness reports, never raises
            checks["mongodb"] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        kafka_ok = await self.broker.ping(timeout=2)
        checks["kafka"] = {"ok": bool(kafka_ok)}
        running = [sub.consumer is not None and sub.running for sub in self.broker.subscribers]
        checks["consumers"] = {"ok": bool(running) and all(running), "running": sum(running), "total": len(running)}
        checks["processing"] = {"ok": self.health.degraded_reason is None, "error": self.health.degraded_reason}
        return checks


def run_service(create_runtime: Callable[[], ServiceRuntime]) -> None:
    """Entry point of ``python -m services.<name>``: JSON logs, HTTP on the
    service's port, graceful shutdown on SIGTERM/SIGINT."""
    runtime = create_runtime()
    settings = runtime.settings
    configure_logging(settings.service_name, settings.log_level)
    uvicorn.run(
        runtime.http_app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=int(settings.graceful_shutdown_seconds),
    )


__all__: Sequence[str] = ("ServiceRuntime", "run_service")
