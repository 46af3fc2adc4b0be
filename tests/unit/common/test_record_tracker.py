"""Redeliveries and stuck records, as /metrics and /readyz see them."""

import asyncio

from aiokafka import TopicPartition
from faststream.kafka import TestKafkaBroker

from im_contracts.topics import SEND_REQUESTED
from services.common.health import RecordTracker
from services.common.runtime import ServiceRuntime
from services.common.settings import ServiceSettings
from tests.contracts.examples import EXAMPLES


class Consumer:
    def __init__(self, *owned: TopicPartition) -> None:
        self.owned = set(owned)

    def assignment(self) -> set[TopicPartition]:
        return self.owned


def test_an_offset_seen_again_is_a_redelivery_and_keeps_its_first_time() -> None:
    tracker = RecordTracker(stuck_after_seconds=0)
    consumer = Consumer(TopicPartition("t", 0))
    assert not tracker.started(consumer, "t", 0, 5)
    assert tracker.started(consumer, "t", 0, 5)  # left uncommitted, handed again
    tracker.finished(consumer, "t", 0, 5)
    assert not tracker.started(consumer, "t", 0, 6)
    tracker.finished(consumer, "t", 0, 6)
    assert tracker.started(consumer, "t", 0, 3)  # a rewind past what this process handled
    assert not tracker.started(Consumer(), "t", 0, 3)  # another consumer (another group) has its own offsets


def test_a_stuck_record_is_named_until_it_finishes_or_its_partition_moves() -> None:
    tracker = RecordTracker(stuck_after_seconds=-1)  # everything unfinished counts as stuck
    consumer = Consumer(TopicPartition("t", 2))
    tracker.started(consumer, "t", 2, 41)
    assert tracker.stuck()[0].startswith("t partition 2 offset 41 unfinished for ")
    consumer.owned.clear()
    assert tracker.stuck() == []
    consumer.owned.add(TopicPartition("t", 2))
    tracker.finished(consumer, "t", 2, 41)
    assert tracker.stuck() == []


async def test_readiness_fails_naming_a_record_stuck_in_its_handler() -> None:
    runtime = ServiceRuntime(
        ServiceSettings(service_name="unit", mongodb_uri="mongodb://127.0.0.1:9/", stuck_record_seconds=0.05)
    )
    release = asyncio.Event()

    @runtime.subscriber(SEND_REQUESTED)
    async def handle(body: dict) -> None:
        await release.wait()

    try:
        async with TestKafkaBroker(runtime.broker) as broker:
            publishing = asyncio.create_task(
                broker.publish(EXAMPLES["SendMessage"].model_dump(mode="json"), SEND_REQUESTED, key=b"k")
            )
            await asyncio.sleep(0.1)
            checks = await runtime.readiness()
            release.set()
            await publishing
            assert checks["records"]["ok"] is False
            assert "im.send.requested partition 0 offset 0 unfinished for" in checks["records"]["stuck"][0]
            assert (await runtime.readiness())["records"] == {"ok": True, "stuck": []}
    finally:
        await runtime.mongo.close()
