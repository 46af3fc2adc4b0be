"""Drives the real suite from tests: the five services run in this process
against real Kafka and a real MongoDB-wire database, each with a fresh
database prefix and consumer groups, each as its own Kafka principal; the
tests' own producer and the observer that records every topic are im-ops."""

import asyncio
import json
import os
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from im_contracts import ContractModel, kafka_key, parse
from im_contracts.topics import ALL_TOPICS
from services.common import tokens
from services.common.auth import Role
from services.common.credentials import OPS, service_principal
from services.common.kafka_client import client_options, settings_of
from services.common.principals import grant_group_prefix
from services.common.settings import KafkaSettings
from services.common.runtime import ServiceRuntime
from services.registry import SERVICES, runtime_factory

DEFAULT_TIMEOUT = 30.0
REPO_ROOT = Path(__file__).resolve().parent.parent


def local_auth_dir(instance: str | None = None) -> Path:
    """Where a local instance keeps its signing key and JWKS (created on first use)."""
    root = Path(os.environ.get("SCIM_DATA") or REPO_ROOT / ".data")
    directory = root / (instance or os.environ.get("SCIM_INSTANCE", "test")) / "auth"
    tokens.init(directory)
    return directory


@dataclass
class Observed:
    topic: str
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]
    message: ContractModel | None  # None when the body is not a valid contract message


class Observer:
    """Reads every topic from the moment it starts; tests wait on what arrives."""

    def __init__(self, kafka: KafkaSettings, topics: Iterable[str] = ALL_TOPICS) -> None:
        self._consumer = AIOKafkaConsumer(
            *topics,
            **client_options(kafka),
            group_id=f"observer-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="latest",
            enable_auto_commit=False,
            max_partition_fetch_bytes=8 * 1024 * 1024,
        )
        self.records: dict[str, list[Observed]] = defaultdict(list)
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        await wait_for_positions(self._consumer)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        await self._consumer.stop()

    async def _run(self) -> None:
        async for record in self._consumer:
            try:
                message = parse(record.topic, record.value)
            except Exception:  # the fuzz tests publish bodies no parser should have to survive
                message = None
            observed = Observed(record.topic, record.key, record.value, dict(record.headers), message)
            async with self._changed:
                self.records[record.topic].append(observed)
                self._changed.notify_all()

    def messages(self, topic: str, predicate: Callable[[Any], bool] = lambda m: True) -> list[Any]:
        return [o.message for o in self.records[topic] if o.message is not None and predicate(o.message)]

    async def wait_for(
        self,
        topic: str,
        predicate: Callable[[Any], bool] = lambda m: True,
        *,
        count: int = 1,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> list[Any]:
        """Wait until at least ``count`` messages on ``topic`` match; return them all."""
        async def enough() -> list[Any]:
            async with self._changed:
                while len(found := self.messages(topic, predicate)) < count:
                    await self._changed.wait()
                return found

        try:
            return await asyncio.wait_for(enough(), timeout)
        except TimeoutError:
            seen = self.messages(topic, predicate)
            raise AssertionError(f"waited {timeout}s for {count} matching message(s) on {topic}; saw {len(seen)}: {seen[:5]}") from None

    async def wait_for_raw(self, topic: str, predicate: Callable[[Observed], bool], timeout: float = DEFAULT_TIMEOUT) -> Observed:
        async def first() -> Observed:
            async with self._changed:
                while True:
                    for o in self.records[topic]:
                        if predicate(o):
                            return o
                    await self._changed.wait()

        return await asyncio.wait_for(first(), timeout)

    async def outcome_of(self, command_id: str, timeout: float = DEFAULT_TIMEOUT) -> Any:
        """The MessageDelivered or MessageRejected that ended a SendMessage."""
        async def first() -> Any:
            async with self._changed:
                while True:
                    for topic in ("im.send.delivered", "im.send.rejected"):
                        for m in self.messages(topic, lambda m: m.command_id == command_id):
                            return m
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(first(), timeout)
        except TimeoutError:
            raise AssertionError(f"no outcome for {command_id} within {timeout}s") from None


async def wait_for_positions(consumer: AIOKafkaConsumer, timeout: float = 60.0) -> None:
    """Wait for an assignment and a resolved position on every partition, so a
    'latest' consumer cannot miss what is published right after this returns."""
    async def settle() -> None:
        while not consumer.assignment():
            await asyncio.sleep(0.05)
        for tp in consumer.assignment():
            await consumer.position(tp)

    await asyncio.wait_for(settle(), timeout)


@dataclass
class Suite:
    kafka: str
    mongodb_uri: str
    prefix: str
    kafka_credentials: Path | None = None  # the principals' client properties; None: no SASL
    auth_dir: Path = field(default_factory=local_auth_dir)
    runtimes: dict[str, ServiceRuntime] = field(default_factory=dict)
    observer: Observer | None = None
    producer: AIOKafkaProducer | None = None

    def kafka_as(self, principal: str) -> KafkaSettings:
        return settings_of(principal, self.kafka, self.kafka_credentials)

    def kafka_env(self, principal: str) -> dict[str, str]:
        """The environment of a subprocess connecting as `principal`."""
        properties = self.kafka_as(principal).kafka_client_properties
        return {"KAFKA_BOOTSTRAP_SERVERS": self.kafka, **({"KAFKA_CLIENT_PROPERTIES": str(properties)} if properties else {})}

    async def start(self, services: Iterable[str] = SERVICES) -> None:
        if self.kafka_credentials is not None:  # our fresh consumer groups, for each service's principal
            await asyncio.to_thread(grant_group_prefix, self.kafka_as(OPS), self.prefix)
        self.producer = AIOKafkaProducer(
            **client_options(self.kafka_as(OPS)), acks="all", enable_idempotence=True, max_request_size=8 * 1024 * 1024
        )
        await self.producer.start()
        self.observer = Observer(self.kafka_as(OPS))
        await self.observer.start()
        for name in services:
            self.runtimes[name] = runtime_factory(name)(**self.settings_overrides(name))
        await asyncio.gather(*(r.start() for r in self.runtimes.values()))
        await asyncio.gather(*(settle_subscribers(r) for r in self.runtimes.values()))

    def settings_overrides(self, service: str) -> dict[str, Any]:
        return {
            "kafka_bootstrap_servers": self.kafka,
            "kafka_client_properties": self.kafka_as(service_principal(service)).kafka_client_properties,
            "mongodb_uri": self.mongodb_uri,
            "database_prefix": self.prefix,
            "group_prefix": self.prefix,
            "auto_offset_reset": "latest",
            "auth_jwks": str(self.auth_dir / tokens.JWKS),
        }

    async def stop(self) -> None:
        for runtime in self.runtimes.values():
            await runtime.stop()
        if self.observer:
            await self.observer.stop()
        if self.producer:
            await self.producer.stop()

    async def publish(self, topic: str, message: ContractModel, correlation_id: str | None = None) -> None:
        headers = [("correlation_id", (correlation_id or uuid.uuid4().hex).encode())]
        await self.producer.send_and_wait(topic, message.model_dump_json().encode(), key=kafka_key(message), headers=headers)

    async def publish_raw(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        await self.producer.send_and_wait(topic, value, key=key)

    def token(self, role: Role | str = Role.OPS, sub: str = "tests", **claims: Any) -> str:
        return tokens.mint(self.auth_dir, role, sub, **claims)

    def http(self, service: str, token: str | None = None) -> httpx.AsyncClient:
        """A client of one service's HTTP API, reading with an ops token unless given another."""
        transport = httpx.ASGITransport(app=self.runtimes[service].http_app)
        headers = {"Authorization": f"Bearer {token or self.token()}"}
        return httpx.AsyncClient(transport=transport, base_url=f"http://{service}", headers=headers)


async def settle_subscribers(runtime: ServiceRuntime) -> None:
    await runtime.wait_until_assigned()


def unique(prefix: str) -> str:
    """A fresh id for one test, valid as a seller/creator/command id."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def body(value: dict[str, Any]) -> bytes:
    return json.dumps(value).encode()
