"""Batch-per-fetch consumption for the send path.

A batch subscriber is handed what one fetch returned (up to `batch_max_records`
records of the partitions its consumer owns, each partition's in order) and
handles it as one unit: every record decoded and validated on its own, the
valid ones given to the stage's handler together (one load, one decision pass,
one write per collection), every record its decisions produce handed to the
producer and their acks awaited once; its offsets are then committed in the
background (`BackgroundCommits`).

A record that cannot be decoded or validated is dead-lettered on its own and
never holds back its neighbours (I3). If the handler fails on the batch for a
reason that is not an outage, the batch is handled again one record at a time,
so only the record that fails is dead-lettered. Outages are waited out for the
whole batch, which the handlers' stored decisions make safe to redo (I1, I2).
At low load a fetch returns one record, and a batch is just that record.
"""

import asyncio
import dataclasses
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from pydantic import TypeAdapter

from im_contracts.keys import CORRELATION_ID_HEADER

from services.common.consuming import ConsumingRuntime, dead_letter, describe, type_label
from services.common.errors import PermanentMessageError, is_broken_producer, is_transient
from services.common.idempotency import Decision
from services.common.jsonbody import parse_json_object
from services.common.logging import get_logger

M = TypeVar("M")
log = get_logger("im.consumer")
# What a stage that only follows a topic answers for each record: nothing to publish or count.
NOT_DECIDED = Decision(outcome="")


@dataclass(frozen=True, slots=True)
class Incoming(Generic[M]):
    """One valid record of a batch."""

    message: M
    correlation_id: str | None
    record: Any
    body: dict[str, Any]


# The stage: decisions for the batch's messages, one per message, in order.
BatchHandler = Callable[[list[Incoming[M]]], Awaitable[Sequence[Decision]]]
# Work after the batch's decisions are published (e.g. messaging's bulk outcomes).
AfterPublish = Callable[[list[Incoming[M]], Sequence[Decision]], Awaitable[None]]


@dataclass(slots=True)
class _Rejected:
    record: Any
    body: dict[str, Any] | None
    error: BaseException


async def safe_headers_parser(msg: Any, original: Callable[[Any], Awaitable[Any]]) -> Any:
    """FastStream's batch parser decodes every header as UTF-8: a record with a
    hostile header would fail the whole batch before any handler sees it, so such
    a batch is parsed again with its undecodable headers made readable."""
    try:
        return await original(msg)
    except (UnicodeDecodeError, AttributeError):  # a value that is not UTF-8, or null
        return await original(tuple(_with_readable_headers(record) for record in msg))


def _with_readable_headers(record: Any) -> Any:
    headers = [(name, (value or b"").decode(errors="replace").encode()) for name, value in record.headers]
    return dataclasses.replace(record, headers=headers)


def _correlation_id(record: Any) -> str | None:
    for name, value in record.headers or ():
        if name == CORRELATION_ID_HEADER:
            return value.decode(errors="replace")
    return None


class BatchConsumer(Generic[M]):
    """Decodes, hands to the stage, publishes and accounts for one batch at a time."""

    def __init__(
        self,
        runtime: ConsumingRuntime,
        model: Any,
        handle: BatchHandler[M],
        after_publish: AfterPublish[M] | None = None,
    ) -> None:
        self.runtime = runtime
        self.adapter: TypeAdapter[M] = TypeAdapter(model)
        self.handle = handle
        self.after_publish = after_publish

    async def consume(self, records: Sequence[Any], consumer: Any) -> None:
        runtime = self.runtime
        if not records:
            return
        topic = records[0].topic
        structlog.contextvars.bind_contextvars(topic=topic)
        started = time.perf_counter()
        for record in records:
            if runtime.records.started(consumer, record.topic, record.partition, record.offset):
                runtime.metrics.redeliveries.labels(record.topic).inc()
        valid: list[Incoming[M]] = []
        rejected: list[_Rejected] = []
        for record in records:
            item = self._decode(record)
            (valid if isinstance(item, Incoming) else rejected).append(item)
        try:
            for bad in rejected:
                await dead_letter(runtime, bad.record, bad.body, bad.error, _correlation_id(bad.record))
                self._count(topic, [bad.body], "dead_letter")
            if valid:
                await self._handle(valid)
            runtime.health.mark_recovered()
            for record in records:
                runtime.records.finished(consumer, record.topic, record.partition, record.offset)
        finally:
            elapsed = time.perf_counter() - started
            runtime.metrics.handler_seconds.labels(topic).observe(elapsed)
            runtime.metrics.batch_records.labels(topic).observe(len(records))
            log.info(
                "handled batch", records=len(records), dead_letters=len(rejected),
                partitions=len({record.partition for record in records}), ms=round(elapsed * 1000, 2),
            )
            structlog.contextvars.unbind_contextvars("topic")

    def _decode(self, record: Any) -> "Incoming[M] | _Rejected":
        body = None
        try:
            body = parse_json_object(record.value or b"", max_bytes=self.runtime.settings.max_message_bytes)
            if not record.key:
                # Without the key the record sits on an arbitrary partition, out of
                # order with its conversation, seller or creator (DESIGN §3).
                raise PermanentMessageError("record has no key (the contract keys every message)")
            return Incoming(self.adapter.validate_python(body), _correlation_id(record), record, body)
        except Exception as exc:  # whatever is wrong with it is the record's fault
            return _Rejected(record, body, exc)

    async def _handle(self, valid: list[Incoming[M]]) -> None:
        runtime = self.runtime
        topic = valid[0].record.topic
        try:
            await self._decide_and_publish(valid, topic)
        except Exception as exc:
            if is_transient(exc) or is_broken_producer(exc):
                raise  # not the records' fault: the batch stays uncommitted
            log.warning("batch failed; handling its records one at a time", error=describe(exc))
            for item in valid:
                try:
                    await self._decide_and_publish([item], topic)
                except Exception as one_exc:
                    if is_transient(one_exc) or is_broken_producer(one_exc):
                        raise
                    await dead_letter(runtime, item.record, item.body, one_exc, item.correlation_id)
                    self._count(topic, [item.body], "dead_letter")

    async def _decide_and_publish(self, items: list[Incoming[M]], topic: str) -> None:
        runtime = self.runtime
        decisions = await runtime.wait_out(lambda: self.handle(items), topic=topic)
        outgoing = [(record, item.correlation_id) for item, decision in zip(items, decisions, strict=True)
                    for record in decision.outgoing]
        await runtime.wait_out(lambda: runtime.publisher.send_each(outgoing), topic=topic)
        if self.after_publish is not None:
            await runtime.wait_out(lambda: self.after_publish(items, decisions), topic=topic)
        outcomes = Counter(decision.outcome for decision in decisions if decision.outcome)
        for outcome, count in outcomes.items():
            runtime.metrics.outcomes.labels(outcome).inc(count)
        self._count(topic, [item.body for item in items], "ok")
        for item, decision in zip(items, decisions, strict=True):
            log.debug("handled", offset=item.record.offset, partition=item.record.partition,
                      command_id=getattr(item.message, "command_id", None), outcome=decision.outcome)

    def _count(self, topic: str, bodies: Sequence[dict[str, Any] | None], result: str) -> None:
        """im_messages_handled_total, one increment per body type."""
        for body_type, count in Counter(type_label(body or {}) for body in bodies).items():
            self.runtime.metrics.handled.labels(topic, body_type, result).inc(count)


def straight_to(
    subscriber: Any, batch: BatchConsumer[Any], commits: "BackgroundCommits"
) -> Callable[[tuple[Any, ...]], Awaitable[None]]:
    """What the subscriber's consume loop does with each fetch: hand it to the batch
    consumer, then have its offsets committed. FastStream's dispatch (context scopes,
    middlewares, dependency injection, a message object per fetch) cost as much CPU
    per batch as the stage's own work; the batch consumer logs, counts and
    dead-letters itself. Holding the subscriber's lock keeps the graceful stop's drain."""

    async def consume_fetch(records: tuple[Any, ...]) -> None:
        consumer = subscriber.consumer
        if not subscriber.running or consumer is None:
            return
        with subscriber.lock:
            try:
                await batch.consume(records, consumer)
            except Exception as exc:  # stopping mid-outage, or a broken producer: hand the fetch again
                for tp, offset in _earliest_offsets(records).items():
                    consumer.seek(tp, offset)
                log.warning("batch left uncommitted", error=f"{type(exc).__name__}: {exc}")
                return
            commits.handled(consumer, records)

    return consume_fetch


class OnRebalance(ConsumerRebalanceListener):
    """Calls `changed` whenever partitions are revoked from the consumer or assigned to it."""

    def __init__(self, changed: Callable[[], None]) -> None:
        self._changed = changed

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self._changed()

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self._changed()


class BackgroundCommits:
    """The offsets of one consumer's handled fetches, committed in the background: one
    commit in flight at a time, at most one per `interval`, whatever is handled
    meanwhile riding the next. A stage never waits for its commit. The offsets are the
    handled records' own, never the consumer's position (already past the fetch being
    handled), so a crash redelivers only what was handled and not yet committed, and
    the stored decisions replay it (I2, I4). A rebalance meanwhile hands the new owner
    that rest again; offsets of partitions no longer assigned are dropped."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._consumer: AIOKafkaConsumer | None = None
        self._pending: dict[TopicPartition, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._last = 0.0

    def handled(self, consumer: AIOKafkaConsumer, records: Sequence[Any]) -> None:
        if consumer is not self._consumer:  # a restarted subscriber: the old consumer's offsets are void
            self._consumer, self._pending = consumer, {}
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            self._pending[tp] = max(record.offset + 1, self._pending.get(tp, 0))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._commit_pending())

    async def flush(self) -> None:
        """Wait for the offsets handled so far to be committed (a graceful stop)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def _commit_pending(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending and self._consumer is not None:
            if (wait := self._last + self._interval - loop.time()) > 0:
                await asyncio.sleep(wait)
            consumer, assigned = self._consumer, self._consumer.assignment()
            offsets = {tp: offset for tp, offset in self._pending.items() if tp in assigned}
            self._pending = {}
            self._last = loop.time()
            if not offsets:
                continue
            try:
                await consumer.commit(offsets)
            except Exception as exc:  # a rebalance or an outage: the next owner is handed these again
                log.warning("commit failed", error=f"{type(exc).__name__}: {exc}")


def _earliest_offsets(records: Sequence[Any]) -> dict[TopicPartition, int]:
    earliest: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(record.topic, record.partition)
        earliest[tp] = min(record.offset, earliest.get(tp, record.offset))
    return earliest
