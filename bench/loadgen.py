"""Open-loop load: publish at a fixed rate, match outcomes, step the rate up.

Latency runs from a message's *intended* publication time (start + i/rate),
so a generator that falls behind cannot hide queueing (no coordinated
omission). Outcomes are matched by command_id in this process, so both ends
of every latency are read from one clock."""

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.partitioner import DefaultPartitioner

from bench.stats import DivergenceRule, LatencySummary, StepResult, reference_p99
from services.common.kafka_client import client_options
from services.common.settings import KafkaSettings

COMMAND_ID = re.compile(rb'"command_id"\s*:\s*"([^"]+)"')
# One outgoing message of a step: (command_id, key, value).
Message = tuple[str, bytes, bytes]
PARTITIONER = DefaultPartitioner()  # murmur2 of the key, like every Kafka client's default


def command_id_of(value: bytes) -> str | None:
    """The command_id of a JSON body, without parsing all of it."""
    found = COMMAND_ID.search(value)
    if found:
        return found.group(1).decode()
    try:
        body = json.loads(value)
    except ValueError:
        return None
    return body.get("command_id") if isinstance(body, dict) else None


@dataclass
class StepLog:
    sent: int = 0
    outstanding: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, delivered only
    finished_at: list[float] = field(default_factory=list)  # every outcome
    rejected: Counter[str] = field(default_factory=Counter)


class Tracker:
    """The bench's messages in flight, by step, and what became of them."""

    def __init__(self) -> None:
        self._inflight: dict[str, tuple[int, float]] = {}
        self.steps: dict[int, StepLog] = {}

    def sent(self, step: int, command_id: str, intended: float) -> None:
        log = self.steps.setdefault(step, StepLog())
        log.sent += 1
        log.outstanding += 1
        self._inflight[command_id] = (step, intended)

    def finished(self, command_id: str, at: float, rejected_reason: str | None = None) -> tuple[int, float] | None:
        """Record an outcome; returns (step, latency) for the bench's own messages."""
        entry = self._inflight.pop(command_id, None)
        if entry is None:
            return None  # not ours, or a replayed outcome
        step, intended = entry
        log = self.steps[step]
        log.outstanding -= 1
        log.finished_at.append(at)
        latency = at - intended
        if rejected_reason is None:
            log.latencies.append(latency)
        else:
            log.rejected[rejected_reason] += 1
        return step, latency

    def intended(self, command_id: str) -> float | None:
        entry = self._inflight.get(command_id)
        return entry[1] if entry else None


# Called for each outcome record: returns (command_id, rejected reason or None), or None to ignore it.
OutcomeReader = Callable[[ConsumerRecord], tuple[str, str | None] | None]
OutcomeHook = Callable[[ConsumerRecord, int, float], None]


class Sink:
    """Consumes the outcome topics and feeds the tracker."""

    def __init__(self, bootstrap: str, topics: Sequence[str], group: str, tracker: Tracker, read: OutcomeReader) -> None:
        self._consumer = AIOKafkaConsumer(
            *topics,
            **kafka_options(bootstrap),
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            # The instrument answers fast: with aiokafka's 500 ms a fetch in
            # flight for quiet partitions delays the busy ones' next fetch.
            fetch_max_wait_ms=20,
        )
        self._tracker = tracker
        self._read = read
        self.hooks: list[OutcomeHook] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._consumer.start()
        await wait_for_positions(self._consumer)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()

    async def _run(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=100, max_records=2000)
            now = time.perf_counter()
            for records in batches.values():
                for record in records:
                    outcome = self._read(record)
                    if outcome is None:
                        continue
                    matched = self._tracker.finished(outcome[0], now, outcome[1])
                    if matched is not None:
                        for hook in self.hooks:
                            hook(record, *matched)


async def wait_for_positions(consumer: AIOKafkaConsumer, timeout: float = 60.0) -> None:
    """Until every assigned partition has a resolved position, so a 'latest'
    consumer sees everything published afterwards."""
    async def settle() -> None:
        while not consumer.assignment():
            await asyncio.sleep(0.05)
        for tp in consumer.assignment():
            await consumer.position(tp)

    await asyncio.wait_for(settle(), timeout)


def kafka_options(bootstrap: str) -> dict[str, Any]:
    """The bench's clients connect as KAFKA_CLIENT_PROPERTIES says (`make bench`: im-ops)."""
    return client_options(KafkaSettings(kafka_bootstrap_servers=bootstrap))


def new_producer(bootstrap: str) -> AIOKafkaProducer:
    # The services' producer settings (acks=all, idempotent, linger 1 ms).
    return AIOKafkaProducer(**kafka_options(bootstrap), acks="all", enable_idempotence=True, linger_ms=1)


@dataclass
class StepPlan:
    rate: float
    seconds: float
    fixed: bool  # one of the fixed loads asked for (reported in the latency table)


@dataclass
class Load:
    """Publishes ``build(i)`` messages to ``topic`` at fixed rates."""

    producer: AIOKafkaProducer
    topic: str
    tracker: Tracker
    build: Callable[[int], Message]
    max_backlog_seconds: float = 3.0  # abort a step once this much offered load is waiting
    drain_seconds: float = 30.0
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    _count: int = 0
    _send_errors: int = 0

    async def step(self, number: int, rate: float, seconds: float) -> StepResult:
        log = self.tracker.steps.setdefault(number, StepLog())
        total = max(1, round(rate * seconds))
        partitions = sorted(await self.producer.partitions_for(self.topic))
        start = time.perf_counter()
        sent = 0
        aborted = False
        while sent < total:
            due = min(total, int((time.perf_counter() - start) * rate) + 1)
            batch = []
            while sent < due:
                command_id, key, value = self.build(self._count)
                self._count += 1
                self.tracker.sent(number, command_id, start + sent / rate)
                batch.append((key, value))
                sent += 1
            await self._publish(batch, partitions)
            if log.outstanding > max(rate * self.max_backlog_seconds, 100):
                aborted = True
                break
            await asyncio.sleep(max(0.001, start + sent / rate - time.perf_counter()))
        offered_until = time.perf_counter()
        await self._drain(log)
        return self._result(log, rate, start, offered_until, sent, aborted)

    async def _publish(self, records: list[tuple[bytes, bytes]], partitions: list[int]) -> None:
        """What is due, as one record batch per partition (the key picks the
        partition as send() would): a third of send()'s CPU per record, which
        leaves more of the shared cores to what is measured."""
        batches: dict[int, Any] = {}
        for key, value in records:
            partition = PARTITIONER(key, partitions, partitions)
            batch = batches.get(partition) or batches.setdefault(partition, self.producer.create_batch())
            if batch.append(key=key, value=value, timestamp=None, headers=self.headers) is None:  # full
                await self._send(batch, partition)
                batch = batches[partition] = self.producer.create_batch()
                batch.append(key=key, value=value, timestamp=None, headers=self.headers)
        for partition, batch in batches.items():
            await self._send(batch, partition)

    async def _send(self, batch: Any, partition: int) -> None:
        delivery = await self.producer.send_batch(batch, self.topic, partition=partition)
        delivery.add_done_callback(self._count_error)

    def _count_error(self, delivery: "asyncio.Future[object]") -> None:
        if delivery.cancelled() or delivery.exception() is not None:
            self._send_errors += 1

    async def _drain(self, log: StepLog) -> None:
        deadline = time.perf_counter() + self.drain_seconds
        while log.outstanding > 0 and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)

    def _result(self, log: StepLog, rate: float, start: float, offered_until: float, sent: int, aborted: bool) -> StepResult:
        offered_seconds = max(offered_until - start, 1e-6)
        latency = LatencySummary.of_seconds(log.latencies)
        # Outcomes per second over the offered window shifted by the median
        # latency: at a sustainable rate this equals the offered rate.
        shift = (latency.p50 / 1000) if latency else 0.0
        window = (start + shift, offered_until + shift)
        came_out = sum(1 for t in log.finished_at if window[0] <= t <= window[1])
        return StepResult(
            offered_rate=rate,
            achieved_offer_rate=round(sent / offered_seconds, 1) if sent > 1 else rate,
            seconds=round(offered_seconds, 2),
            sent=sent,
            completed=len(log.finished_at),
            rejected=sum(log.rejected.values()),
            delivered_rate=round(came_out / offered_seconds, 1),
            latency=latency,
            aborted=aborted,
        )

    @property
    def send_errors(self) -> int:
        return self._send_errors


async def ramp(
    plan: Sequence[StepPlan],
    run_step: Callable[[int, StepPlan], Awaitable[StepResult]],
    rule: DivergenceRule,
    report: Callable[[StepResult], None] = lambda _: None,
    *,
    step_down: Callable[[float], StepPlan] | None = None,
    max_step_downs: int = 0,
) -> list[StepResult]:
    """Run the steps in order until one diverges (the lowest p99 of the first
    steps is the low-load reference, `reference_p99`). If the very first step
    already diverges, halve its rate (``step_down`` plans each lower step) up to
    ``max_step_downs`` times until a step holds, so the result still brackets
    the sustainable rate."""
    results: list[StepResult] = []
    for number, step in enumerate(plan):
        result = await run_step(number, step)
        result.diverged = rule.reason(result, reference_p99(results))
        results.append(result)
        report(result)
        if result.diverged:
            break
    if not results:
        return results
    rate = plan[0].rate
    while step_down and results[0].diverged and not any(r.diverged is None for r in results) and max_step_downs > 0:
        max_step_downs -= 1
        rate /= 2
        result = await run_step(len(results), step_down(rate))
        result.diverged = rule.reason(result, None)
        results.append(result)
        report(result)
    return results
