"""The shared consuming path, on FastStream's in-memory TestKafkaBroker:
poison is dead-lettered and the consumer goes on; transient failures are
retried; the size limit is enforced before parsing."""

import json

import pytest
from faststream.kafka import TestKafkaBroker
from aiokafka.errors import OutOfOrderSequenceNumber
from pymongo.errors import AutoReconnect

from im_contracts import DeadLetter, SendMessage
from im_contracts.topics import DLQ, SEND_REQUESTED
from im_contracts.unions import SendRequestedMessage
from services.common.runtime import ServiceRuntime
from services.common.settings import ServiceSettings
from tests.contracts.examples import EXAMPLES


def make_runtime(max_message_bytes: int = 1024) -> tuple[ServiceRuntime, list[SendMessage], list[DeadLetter], list[int]]:
    runtime = ServiceRuntime(
        ServiceSettings(service_name="unit", max_message_bytes=max_message_bytes, retry_initial_backoff_seconds=0.001)
    )
    handled: list[SendMessage] = []
    letters: list[DeadLetter] = []
    failures_left = [0]

    @runtime.subscriber(SEND_REQUESTED)
    async def handle(send: SendRequestedMessage) -> None:
        if failures_left[0]:
            failures_left[0] -= 1
            raise AutoReconnect("database away")
        if send.text == "explode":
            raise RuntimeError("handler bug")
        if send.text == "broken producer":
            raise OutOfOrderSequenceNumber("sequence lost after a broker restart")
        handled.append(send)

    @runtime.broker.subscriber(DLQ)
    async def collect(letter: DeadLetter) -> None:
        letters.append(letter)

    return runtime, handled, letters, failures_left


VALID = EXAMPLES["SendMessage"].model_dump(mode="json")
KEY = b"seller-1:creator-1"


@pytest.mark.parametrize(
    ("body", "key", "error_part"),
    [
        (b"not json", KEY, "not JSON"),
        (b"[1, 2]", KEY, "not an object"),
        (json.dumps({"type": "Nope"}).encode(), KEY, "schema violation"),
        (json.dumps({**VALID, "seller_id": "bad id"}).encode(), KEY, "schema violation"),
        (json.dumps({**VALID, "text": "x" * 2000}).encode(), KEY, "exceeds"),
        (b"\xff\xfe", KEY, "not JSON"),
        (json.dumps(VALID).encode(), None, "no key"),
    ],
)
async def test_poison_is_dead_lettered_and_consumer_goes_on(body: bytes, key: bytes | None, error_part: str) -> None:
    runtime, handled, letters, _ = make_runtime()
    async with TestKafkaBroker(runtime.broker) as broker:
        await broker.publish(body, SEND_REQUESTED, key=key)
        await broker.publish(VALID, SEND_REQUESTED, key=KEY)
    assert len(handled) == 1
    assert len(letters) == 1 and error_part in letters[0].error
    assert letters[0].payload_bytes() == body
    assert letters[0].service == "unit" and letters[0].topic == SEND_REQUESTED


DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT_WITH_COMMAND_ID = b'{"command_id": "cmd-deep", "x": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001


@pytest.mark.parametrize(
    ("body", "error_part"),
    [
        (DEEP_ARRAY, "nested more than 64 levels"),
        (DEEP_OBJECT_WITH_COMMAND_ID, "nested more than 64 levels"),
        (b'{"a": ' * 65 + b"1" + b"}" * 65, "nested more than 64 levels"),
        (b'{"text": "' + b"[" * 5000 + b'"}', "schema violation"),  # brackets inside a string are text
        (b'{"n": 1e400}', "out of range"),
        (b'{"n": NaN}', "not a JSON number"),
        (b'{"n": ' + b"9" * 30 + b"}", "does not fit in 64 bits"),
        (b'{"n": ' + b"9" * 5000 + b"}", "not JSON"),
        (b'{"a": 1, "a": 2}', "duplicate key"),
        (b'{"text": "\\ud800"}', "lone UTF-16 surrogate"),
        (b'{"text": "' + b"[" * 100 + b'\\"' * 100_000, "not JSON"),  # an unterminated string full of escaped quotes
    ],
)
async def test_hostile_json_is_dead_lettered_once_and_the_next_record_is_handled(body: bytes, error_part: str) -> None:
    runtime, handled, letters, _ = make_runtime(max_message_bytes=512 * 1024)
    async with TestKafkaBroker(runtime.broker) as broker:
        await broker.publish(body, SEND_REQUESTED, key=KEY)
        await broker.publish(VALID, SEND_REQUESTED, key=KEY)
    assert len(handled) == 1
    assert len(letters) == 1 and error_part in letters[0].error, letters[0].error if letters else None
    assert letters[0].payload_bytes() == body


async def test_a_dead_letter_names_the_readable_command_id_without_parsing_twice() -> None:
    runtime, _, letters, _ = make_runtime()
    async with TestKafkaBroker(runtime.broker) as broker:
        await broker.publish({**VALID, "seller_id": "bad id"}, SEND_REQUESTED, key=KEY)
        await broker.publish(b'{"command_id": "cmd-1", "x": ' + b"[" * 100 + b"]" * 100 + b"}", SEND_REQUESTED, key=KEY)
    assert [letter.command_id for letter in letters] == [VALID["command_id"], None]


async def test_handler_bug_is_dead_lettered_not_retried_forever() -> None:
    runtime, handled, letters, _ = make_runtime()
    async with TestKafkaBroker(runtime.broker) as broker:
        await broker.publish({**VALID, "text": "explode"}, SEND_REQUESTED, key=KEY)
    assert not handled and "RuntimeError: handler bug" in letters[0].error


async def test_transient_failures_are_retried_until_they_pass() -> None:
    runtime, handled, letters, failures_left = make_runtime()
    failures_left[0] = 3
    async with TestKafkaBroker(runtime.broker) as broker:
        await broker.publish(VALID, SEND_REQUESTED, key=KEY)
    assert len(handled) == 1 and not letters
    assert runtime.health.degraded_reason is None


async def test_handled_records_are_counted_by_topic_type_and_result() -> None:
    runtime, _, _, _ = make_runtime()
    async with TestKafkaBroker(runtime.broker) as broker:
        await broker.publish(VALID, SEND_REQUESTED, key=KEY)
        await broker.publish(b"not json", SEND_REQUESTED, key=KEY)
    count = runtime.metrics.registry.get_sample_value
    assert count("im_messages_handled_total", {"topic": SEND_REQUESTED, "type": "SendMessage", "result": "ok"}) == 1
    assert count("im_messages_handled_total", {"topic": SEND_REQUESTED, "type": "unreadable", "result": "dead_letter"}) == 1
    assert count("im_dead_letters_total", {"topic": SEND_REQUESTED}) == 1


async def test_a_broken_producer_is_fatal_to_the_process_not_to_the_message() -> None:
    runtime, handled, letters, _ = make_runtime()
    fatal: list[str] = []
    runtime.on_fatal = fatal.append
    async with TestKafkaBroker(runtime.broker) as broker:
        try:
            await broker.publish({**VALID, "text": "broken producer"}, SEND_REQUESTED, key=KEY)
        except OutOfOrderSequenceNumber:
            pass  # the in-memory broker hands the nack back to the publisher
    assert not handled and not letters  # never dead-lettered: the message is fine
    assert fatal and "OutOfOrderSequenceNumber" in fatal[0]


async def test_a_dead_letter_that_cannot_be_published_is_retried_with_backoff_and_shown() -> None:
    runtime, handled, letters, _ = make_runtime()
    send = runtime.publisher.send
    failures = [2]
    reasons: list[str | None] = []

    async def flaky_send(records, correlation_id=None):  # type: ignore[no-untyped-def]
        records = list(records)
        if failures[0] and records[0].topic == DLQ:
            failures[0] -= 1
            reasons.append(runtime.health.degraded_reason)
            raise ValueError("letter refused")
        await send(records, correlation_id)

    runtime.publisher.send = flaky_send  # type: ignore[method-assign]
    async with TestKafkaBroker(runtime.broker) as broker:
        await broker.publish(b"not json", SEND_REQUESTED, key=KEY)
        await broker.publish(VALID, SEND_REQUESTED, key=KEY)
    assert len(letters) == 1 and len(handled) == 1
    assert reasons[1] is not None and "cannot dead-letter im.send.requested partition 0 offset 0" in reasons[1]
    count = runtime.metrics.registry.get_sample_value
    assert count("im_dead_letter_failures_total", {"topic": SEND_REQUESTED, "stage": "publish"}) == 2
    assert runtime.health.degraded_reason is None  # recovered once the letter went out


async def test_a_failing_invalid_input_hook_does_not_redeliver_the_record() -> None:
    runtime, handled, letters, _ = make_runtime()

    async def broken_hook(command_id, body, error, correlation_id):  # type: ignore[no-untyped-def]
        raise KeyError("hook bug")

    runtime.invalid_input_hooks[SEND_REQUESTED] = broken_hook
    async with TestKafkaBroker(runtime.broker) as broker:
        await broker.publish({**VALID, "seller_id": "bad id"}, SEND_REQUESTED, key=KEY)
        await broker.publish(VALID, SEND_REQUESTED, key=KEY)
    assert len(letters) == 1 and len(handled) == 1
    count = runtime.metrics.registry.get_sample_value
    assert count("im_dead_letter_failures_total", {"topic": SEND_REQUESTED, "stage": "invalid_input_hook"}) == 1
