"""How every subscriber consumes: bounded JSON decoding (services.common.jsonbody),
logging context per message, retries of transient failures, dead letters for
the rest, whatever the exception.

Offsets are committed only after the handler returns (AckPolicy.NACK_ON_ERROR
with auto-commit off), so a crash anywhere before that redelivers the message
and the idempotent handlers replay their stored decisions (I2, I4).
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, Protocol, TypeVar

import structlog
from faststream import BaseMiddleware
from faststream.message import StreamMessage
from pydantic import ValidationError

from services.common.deadletter import dead_letter_for
from services.common.errors import PermanentMessageError, is_broken_producer, is_transient
from services.common.health import Health, RecordTracker
from services.common.jsonbody import parse_json_object
from services.common.logging import get_logger
from services.common.metrics import ServiceMetrics
from services.common.outbox import Publisher
from services.common.settings import ServiceSettings

T = TypeVar("T")

log = get_logger("im.consumer")

# Called with (command_id, body, error, correlation_id) for an invalid body whose command_id is readable.
InvalidInputHook = Callable[[str, dict[str, Any], str, str | None], Awaitable[None]]


# The body the decoder parsed, for the dead-letter path: it never parses again.
_decoded_body: ContextVar[dict[str, Any] | None] = ContextVar("decoded_body", default=None)
MAX_ERROR_LENGTH = 4000


def json_object_decoder(max_bytes: int) -> Callable[[StreamMessage[Any]], Awaitable[Any]]:
    """Decode a body as a JSON object whatever its content-type header says:
    upstream producers are not FastStream and may send no header at all."""

    async def decode(msg: StreamMessage[Any]) -> Any:
        value = parse_json_object(msg.body, max_bytes=max_bytes)
        _decoded_body.set(value)
        structlog.contextvars.bind_contextvars(command_id=readable_command_id(value), message_type=type_label(value))
        if not msg.raw_message.key:
            # Without the key the record sits on an arbitrary partition, out of
            # order with its conversation, seller or creator (DESIGN §3).
            raise PermanentMessageError("record has no key (the contract keys every message)")
        return value

    return decode


def type_label(body: dict[str, Any]) -> str:
    """The body's `type` as a metric label: a known-looking name, else "unknown"."""
    kind = body.get("type")
    return kind if isinstance(kind, str) and kind.isidentifier() and len(kind) <= 64 else "unknown"


def readable_command_id(body: dict[str, Any]) -> str | None:
    command_id = body.get("command_id")
    return command_id if isinstance(command_id, str) and 1 <= len(command_id) <= 128 else None


def describe(exc: BaseException) -> str:
    """The error of a dead letter, bounded; never raises, whatever the exception."""
    try:
        if isinstance(exc, ValidationError):
            text = f"schema violation: {exc.errors(include_url=False, include_input=False, include_context=False)}"
        else:
            text = f"{type(exc).__name__}: {exc}"
    except Exception:  # an exception whose str() fails is still the message's error
        text = f"{type(exc).__name__} (not printable)"
    return text[:MAX_ERROR_LENGTH]


class ConsumingRuntime(Protocol):
    """What the consumer middleware needs of its service (the ServiceRuntime)."""

    settings: ServiceSettings
    metrics: ServiceMetrics
    health: Health
    records: RecordTracker
    publisher: Publisher
    stopping: bool
    invalid_input_hooks: dict[str, InvalidInputHook]

    def wait_out(self, operation: Callable[[], Awaitable[T]], topic: str | None = None) -> Awaitable[T]: ...


def consumer_middleware(runtime: ConsumingRuntime) -> type[BaseMiddleware]:
    class ResilientConsumer(BaseMiddleware):
        async def consume_scope(self, call_next: Callable[..., Awaitable[Any]], msg: StreamMessage[Any]) -> Any:
            record = msg.raw_message
            if isinstance(record, tuple | list):  # batch subscribers manage their own records
                return await call_next(msg)
            structlog.contextvars.bind_contextvars(
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                correlation_id=msg.correlation_id,
            )
            _decoded_body.set(None)
            consumer = getattr(msg, "consumer", None)
            if runtime.records.started(consumer, record.topic, record.partition, record.offset):
                runtime.metrics.redeliveries.labels(record.topic).inc()
            started = time.perf_counter()
            result = "error"
            try:
                result = await self._handle_with_retries(call_next, msg, record)
                runtime.records.finished(consumer, record.topic, record.partition, record.offset)
            finally:
                elapsed = time.perf_counter() - started
                message_type = structlog.contextvars.get_contextvars().get("message_type", "unreadable")
                runtime.metrics.handler_seconds.labels(record.topic).observe(elapsed)
                runtime.metrics.handled.labels(record.topic, message_type, result).inc()
                log.info("handled", result=result, message_type=message_type, ms=round(elapsed * 1000, 2))
                structlog.contextvars.unbind_contextvars(
                    "topic", "partition", "offset", "command_id", "message_type", "correlation_id"
                )

        async def _handle_with_retries(self, call_next: Callable[..., Awaitable[Any]], msg: StreamMessage[Any], record: Any) -> str:
            """Handle the record, waiting out outages; return its result label ("ok"
            or "dead_letter"). Raises, leaving it uncommitted, when the outage
            outlasts the service (shutting down) or the producer broke: any
            other exception, from decoding, validation or the handler, is the
            message's fault."""
            try:
                await runtime.wait_out(lambda: call_next(msg), topic=record.topic)
                result = "ok"
            except Exception as exc:
                if is_transient(exc) or is_broken_producer(exc):
                    raise  # not the message's fault
                await dead_letter(runtime, record, _decoded_body.get(), exc, msg.correlation_id)
                result = "dead_letter"
            runtime.health.mark_recovered()
            return result

    return ResilientConsumer


async def dead_letter(
    runtime: ConsumingRuntime, record: Any, body: dict[str, Any] | None, exc: BaseException, correlation_id: str | None
) -> None:
    """Publish the record to im.dlq with what was read of it (`body`, never parsed
    again), then let the topic's invalid-input hook answer the command."""
    error = describe(exc)
    log.error("dead-lettering message", error=error, topic=record.topic, partition=record.partition, offset=record.offset)
    runtime.metrics.dead_letters.labels(record.topic).inc()
    command_id = None if body is None else readable_command_id(body)
    await _publish_letter(runtime, record, error, command_id, correlation_id)
    hook = runtime.invalid_input_hooks.get(record.topic)
    if hook is not None and body is not None and command_id is not None:
        try:
            await runtime.wait_out(lambda: hook(command_id, body, error, correlation_id))
        except Exception as hook_exc:
            if is_transient(hook_exc) or is_broken_producer(hook_exc):
                raise
            # The letter is out: the record is dealt with, only the answer to its sender is missing.
            runtime.metrics.dead_letter_failures.labels(record.topic, "invalid_input_hook").inc()
            log.error("invalid-input hook failed", error=describe(hook_exc))


async def _publish_letter(
    runtime: ConsumingRuntime, record: Any, error: str, command_id: str | None, correlation_id: str | None
) -> None:
    """Outages are waited out; any other failure is ours, not the message's:
    say so (log, metric, /readyz) and try again with backoff, never in a hot loop."""
    settings = runtime.settings
    backoff = settings.retry_initial_backoff_seconds
    while True:
        try:
            letter = dead_letter_for(service=settings.service_name, record=record, error=error, command_id=command_id)
            await runtime.wait_out(lambda: runtime.publisher.send([letter], correlation_id))
            return
        except Exception as exc:
            if runtime.stopping or is_transient(exc) or is_broken_producer(exc):
                raise
            reason = f"cannot dead-letter {record.topic} partition {record.partition} offset {record.offset}: {describe(exc)}"
            runtime.health.mark_degraded(reason)
            runtime.metrics.dead_letter_failures.labels(record.topic, "publish").inc()
            log.critical("cannot dead-letter message; retrying", error=reason, backoff=backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, settings.retry_max_backoff_seconds)
