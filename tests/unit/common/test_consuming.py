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


def make_runtime() -> tuple[ServiceRuntime, list[SendMessage], list[DeadLetter], list[int]]:
    runtime = ServiceRuntime(
        ServiceSettings(service_name="unit", max_message_bytes=1024, retry_initial_backoff_seconds=0.001)
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
