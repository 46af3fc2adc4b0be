"""Publishing commands and waiting for what answers them.

To see an outcome, the topics that carry it are read from their end: every
partition is assigned and its end offset resolved before the command is
published, so nothing that follows the publication can be missed. Outcomes
are matched by command_id (never by consumer group: imctl commits nothing).
"""

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from im_contracts import ContractError, ContractModel, encode, kafka_headers, kafka_key, new_event_id, parse, topic_of

from imctl.output import Refused
from imctl.settings import ImctlSettings, kafka_client
from services.common.kafka_client import partitions_of as every_partition


async def partition_counts(settings: ImctlSettings, topics: Iterable[str]) -> dict[str, int]:
    """Partitions per topic, for those of `topics` that exist."""
    return dict(Counter(tp.topic for tp in await every_partition(settings, *topics)))


async def partitions_of(settings: ImctlSettings, *topics: str) -> list[TopicPartition]:
    partitions = await every_partition(settings, *topics)
    found = {tp.topic for tp in partitions}
    if missing := [topic for topic in topics if topic not in found]:
        raise Refused(f"topic {', '.join(missing)} does not exist (create the topics with `imctl topics`)")
    return partitions


@asynccontextmanager
async def reader(settings: ImctlSettings, **options: Any) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer outside any group, for assigned partitions only."""
    consumer = kafka_client(
        settings,
        AIOKafkaConsumer,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        **options,
    )
    await consumer.start()
    try:
        yield consumer
    finally:
        # aiokafka's group-less coordinator starts a task in start(); stopped before
        # that task first ran, stop() raises CancelledError. Let it run once.
        await asyncio.sleep(0)
        await consumer.stop()


@asynccontextmanager
async def writer(settings: ImctlSettings) -> AsyncIterator[AIOKafkaProducer]:
    producer = kafka_client(settings, AIOKafkaProducer, acks="all", enable_idempotence=True, max_request_size=8 * 1024 * 1024)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


class Bus:
    """Publishes commands; with `watch`, reads those topics from the moment before the first publication."""

    def __init__(self, producer: AIOKafkaProducer, consumer: AIOKafkaConsumer | None) -> None:
        self._producer = producer
        self._consumer = consumer
        self.correlation_id = f"imctl-{new_event_id()}"

    async def publish(self, message: ContractModel) -> dict[str, Any]:
        metadata = await self._producer.send_and_wait(
            topic_of(message), encode(message), key=kafka_key(message), headers=kafka_headers(self.correlation_id)
        )
        return {"topic": metadata.topic, "partition": metadata.partition, "offset": metadata.offset}

    async def events(self, timeout: float) -> AsyncIterator[ContractModel]:
        """Valid messages on the watched topics, in arrival order, until `timeout` has passed."""
        assert self._consumer is not None, "Bus opened without topics to watch"
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            batch = await self._consumer.getmany(timeout_ms=int(min(left, 1.0) * 1000))
            for tp, records in batch.items():
                for record in records:
                    try:
                        yield parse(tp.topic, record.value or b"")
                    except ContractError:
                        continue  # poison on an outcome topic is the dead-letter queue's business


@asynccontextmanager
async def bus(settings: ImctlSettings, watch: tuple[str, ...] = ()) -> AsyncIterator[Bus]:
    async with writer(settings) as producer:
        if not watch:
            yield Bus(producer, None)
            return
        partitions = await partitions_of(settings, *watch)
        async with reader(settings) as consumer:
            consumer.assign(partitions)
            await consumer.seek_to_end(*partitions)
            await asyncio.gather(*(consumer.position(tp) for tp in partitions))
            yield Bus(producer, consumer)


async def record_at(consumer: AIOKafkaConsumer, tp: TopicPartition, offset: int, timeout: float = 10.0) -> ConsumerRecord | None:
    """The record at `offset` of an assigned partition, None when there is none."""
    first = (await consumer.beginning_offsets([tp]))[tp]
    end = (await consumer.end_offsets([tp]))[tp]
    if not first <= offset < end:
        return None
    consumer.seek(tp, offset)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in (await consumer.getmany(tp, timeout_ms=1000, max_records=1)).get(tp, []):
            return record if record.offset == offset else None  # a compacted or transactional gap
    raise TimeoutError(f"reading {tp.topic}/{tp.partition} at offset {offset}")
