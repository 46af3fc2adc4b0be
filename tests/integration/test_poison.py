"""Hostile records against the real running suite (real Kafka, real database):
each is dead-lettered once by every consumer group that reads its topic, the
partition goes on (a valid record with the same key right after is handled
within seconds), nothing is redelivered, /readyz stays green, and the logs
hold one error line per dead letter (issue 12)."""

import asyncio
import time
from collections import Counter

import pytest
import structlog
from aiokafka import TopicPartition

from im_contracts import SendMessage, utcnow
from im_contracts.topics import DLQ, SEND_REQUESTED
from services.common.runtime import consumers_of
from tests.fuzz import HOSTILE_CASES, examples_of, fresh, subscriptions, topics_of
from tests.harness import Suite, body, unique

pytestmark = pytest.mark.integration

WITHIN_SECONDS = 10.0


def handled(suite: Suite, topic: str, result: str) -> float:
    return sum(
        sample.value
        for runtime in suite.runtimes.values()
        for metric in runtime.metrics.registry.collect()
        for sample in metric.samples
        if sample.name == "im_messages_handled_total" and sample.labels["topic"] == topic and sample.labels["result"] == result
    )


async def committed_past(suite: Suite, topic: str, partition: int, offset: int) -> None:
    """Until every group reading the topic has committed past the offset (handled it and all before it)."""
    tp = TopicPartition(topic, partition)
    groups = [consumers_of(sub)[0] for runtime in suite.runtimes.values() for sub in runtime.broker.subscribers if topic in topics_of(sub)]
    while True:
        positions = [await consumer.committed(tp) or 0 for consumer in groups]
        if all(position > offset for position in positions):
            return
        await asyncio.sleep(0.05)


def redeliveries(suite: Suite) -> float:
    return sum(
        sample.value
        for runtime in suite.runtimes.values()
        for metric in runtime.metrics.registry.collect()
        for sample in metric.samples
        if sample.name == "im_redeliveries_total"
    )


async def test_a_record_nested_100000_deep_is_dead_lettered_once_and_the_next_send_is_delivered(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    poison = b"[" * 100_000 + b"]" * 100_000
    key = f"{seller}:{creator}".encode()
    with structlog.testing.capture_logs() as logs:
        await suite.publish_raw(SEND_REQUESTED, poison, key=key)
        valid = SendMessage(command_id=unique("cmd"), occurred_at=utcnow(), seller_id=seller, creator_id=creator, sender="creator", text="after the poison")
        published = time.monotonic()
        await suite.publish(SEND_REQUESTED, valid)
        assert (await suite.observer.outcome_of(valid.command_id, timeout=WITHIN_SECONDS)).type == "MessageDelivered"
        delivered_after = time.monotonic() - published
        letters = await suite.observer.wait_for(DLQ, lambda m: m.topic == SEND_REQUESTED and m.key == key.decode())
    assert len(letters) == 1 and "nested more than 64 levels" in letters[0].error
    assert letters[0].payload_bytes() == poison
    errors = [entry for entry in logs if entry["log_level"] in ("error", "critical")]
    assert len(errors) == 1 and errors[0]["event"] == "dead-lettering message", errors
    assert delivered_after < WITHIN_SECONDS


async def test_every_class_of_hostile_record_is_dead_lettered_once_on_every_consumed_topic(suite: Suite) -> None:
    readers: Counter[str] = Counter()
    for runtime in suite.runtimes.values():
        readers += subscriptions(runtime)
    redelivered_before = redeliveries(suite)
    with structlog.testing.capture_logs() as logs:
        for topic, groups in sorted(readers.items()):
            key = unique("k").encode()
            dead_before = handled(suite, topic, "dead_letter")
            for value in HOSTILE_CASES.values():
                await suite.publish_raw(topic, value, key=key)
            after = await suite.producer.send_and_wait(topic, body(fresh(examples_of(topic)[0])), key=key)
            try:
                await asyncio.wait_for(committed_past(suite, topic, after.partition, after.offset), WITHIN_SECONDS)
            except TimeoutError:
                raise AssertionError(f"{topic}: the valid record after the poison was not committed by all {groups} groups") from None
            unexpected = [m.error for m in suite.observer.messages(DLQ, lambda m: m.topic == topic and m.key == key.decode()) if m.payload_bytes() not in HOSTILE_CASES.values()]
            assert not unexpected, f"{topic}: a valid record was dead-lettered: {unexpected}"
            assert handled(suite, topic, "dead_letter") - dead_before == groups * len(HOSTILE_CASES), topic
            letters = await suite.observer.wait_for(
                DLQ, lambda m: m.topic == topic and m.key == key.decode(), count=groups * len(HOSTILE_CASES)
            )
            assert len(letters) == groups * len(HOSTILE_CASES), topic
            assert {letter.payload_bytes() for letter in letters} == set(HOSTILE_CASES.values())
    assert redeliveries(suite) == redelivered_before
    dead_lettered = sum(1 for entry in logs if entry["event"] == "dead-lettering message")
    assert [entry for entry in logs if entry["log_level"] in ("error", "critical") and entry["event"] != "dead-lettering message"] == []
    assert dead_lettered == sum(readers.values()) * len(HOSTILE_CASES)
    for name, runtime in suite.runtimes.items():
        assert (await runtime.readiness())["records"] == {"ok": True, "stuck": []}, name
