"""How every subscriber consumes: JSON decoding with a size limit, logging
context per message, retries of transient failures, dead letters for the rest.

Offsets are committed only after the handler returns (AckPolicy.NACK_ON_ERROR
with auto-commit off), so a crash anywhere before that redelivers the message
and the idempotent handlers replay their stored decisions (I2, I4).
"""

import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import structlog
from faststream import BaseMiddleware
from faststream.message import StreamMessage
from pydantic import ValidationError

from services.common.deadletter import dead_letter_for
from services.common.errors import PermanentMessageError, is_broken_producer, is_transient
from services.common.logging import get_logger

if TYPE_CHECKING:
    from services.common.runtime import ServiceRuntime

log = get_logger("im.consumer")

# Called with (command_id, body, error, correlation_id) for an invalid body whose command_id is readable.
InvalidInputHook = Callable[[str, dict[str, Any], str, str | None], Awaitable[None]]


def json_object_decoder(max_bytes: int) -> Callable[[StreamMessage[Any]], Awaitable[Any]]:
    """Decode a body as a JSON object whatever its content-type header says:
    upstream producers are not FastStream and may send no header at all."""

    async def decode(msg: StreamMessage[Any]) -> Any:
        body: bytes = msg.body
        if len(body) > max_bytes:
            raise PermanentMessageError(f"body of {len(body)} bytes exceeds the {max_bytes}-byte limit")
        try:
            value = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PermanentMessageError(f"body is not JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise PermanentMessageError(f"body is JSON {type(value).__name__}, not an object")
        structlog.contextvars.bind_contextvars(command_id=value.get("command_id"), message_type=_type_label(value))
        if not msg.raw_message.key:
            # Without the key the record sits on an arbitrary partition, out of
            # order with its conversation, seller or creator (DESIGN §3).
            raise PermanentMessageError("record has no key (the contract keys every message)")
        return value

    return decode


def _type_label(body: dict[str, Any]) -> str:
    """The body's `type` as a metric label: a known-looking name, else "unknown"."""
    kind = body.get("type")
    return kind if isinstance(kind, str) and kind.isidentifier() and len(kind) <= 64 else "unknown"


def _readable_command_id(body: bytes) -> tuple[dict[str, Any] | None, str | None]:
    try:
        value = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(value, dict):
        return None, None
    command_id = value.get("command_id")
    if isinstance(command_id, str) and 1 <= len(command_id) <= 128:
        return value, command_id
    return value, None


def describe(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return f"schema violation: {exc.errors(include_url=False, include_input=False)}"
    return f"{type(exc).__name__}: {exc}"


def consumer_middleware(runtime: "ServiceRuntime") -> type[BaseMiddleware]:
    settings = runtime.settings

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
            started = time.perf_counter()
            result = "error"
            try:
                result = await self._handle_with_retries(call_next, msg, record)
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
            outlasts the service (shutting down) or the producer broke."""
            try:
                await runtime.wait_out(lambda: call_next(msg), topic=record.topic)
            except Exception as exc:
                if is_transient(exc) or is_broken_producer(exc):
                    raise  # not the message's fault
                await self._dead_letter(msg, record, exc)
                return "dead_letter"
            runtime.health.mark_recovered()
            return "ok"

        async def _dead_letter(self, msg: StreamMessage[Any], record: Any, exc: BaseException) -> None:
            error = describe(exc)
            log.error("dead-lettering message", error=error)
            runtime.metrics.dead_letters.labels(record.topic).inc()
            hook = runtime.invalid_input_hooks.get(record.topic)
            body, command_id = (
                _readable_command_id(record.value or b"")
                if len(record.value or b"") <= settings.max_message_bytes
                else (None, None)
            )
            letter = dead_letter_for(service=settings.service_name, record=record, error=error, command_id=command_id)
            await runtime.wait_out(lambda: runtime.publisher.send([letter], msg.correlation_id))
            if hook is not None and body is not None and command_id is not None:
                await runtime.wait_out(lambda: hook(command_id, body, error, msg.correlation_id))

    return ResilientConsumer
