"""Batch-per-fetch consumption for the send path.

A batch subscriber is handed what one fetch returned (up to `batch_max_records`
records of the partitions its consumer owns, each partition's in order) and
handles it as one unit: every record decoded and validated on its own, the
valid ones given to the stage's handler together (one load, one decision pass,
one write per collection), every record its decisions produce handed to the
producer and their acks awaited once; its offsets are then committed in the
background (services.common.runtime.BackgroundCommits).

A record that cannot be decoded or validated is dead-lettered on its own and
never holds back its neighbours (I3). If the handler fails on the batch for a
reason that is not an outage, the batch is handled again one record at a time,
so only the record that fails is dead-lettered. Outages are waited out for the
whole batch, which the handlers' stored decisions make safe to redo (I1, I2).
At low load a fetch returns one record, and a batch is just that record.
"""

import dataclasses
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog
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
                self._count(bad.record, bad.body, "dead_letter")
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
                    self._count(item.record, item.body, "dead_letter")

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
        for body_type, count in Counter(type_label(item.body) for item in items).items():
            runtime.metrics.handled.labels(topic, body_type, "ok").inc(count)
        for item, decision in zip(items, decisions, strict=True):
            log.debug("handled", offset=item.record.offset, partition=item.record.partition,
                      command_id=getattr(item.message, "command_id", None), outcome=decision.outcome)

    def _count(self, record: Any, body: dict[str, Any] | None, result: str) -> None:
        self.runtime.metrics.handled.labels(record.topic, type_label(body or {}), result).inc()
