"""One hop of the raw relay baseline, run as its own process like a service:
consume, produce the same bytes to the next topic (acks=all, idempotent),
commit once the produce is acknowledged. No parsing, no database.

    python -m bench.relay_hop BOOTSTRAP SOURCE DEST GROUP [batch|per-message] [FETCH_MAX_WAIT_MS]

``batch`` relays what one fetch returned and commits once (the physical limit
of an at-least-once relay); ``per-message`` waits for each record's ack and
commits each offset, as one FastStream handler does. Prints "ready" once it
owns partitions; stops on SIGTERM."""

import asyncio
import signal
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.loadgen import kafka_options, new_producer, wait_for_positions


async def relay_batches(consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, dest: str, stopping: asyncio.Event) -> None:
    while not stopping.is_set():
        batches = await consumer.getmany(timeout_ms=100, max_records=1000)
        deliveries = [
            await producer.send(dest, record.value, key=record.key, headers=list(record.headers))
            for records in batches.values()
            for record in records
        ]
        if deliveries:
            await asyncio.gather(*deliveries)
            await consumer.commit()


async def relay_each(consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, dest: str, stopping: asyncio.Event) -> None:
    while not stopping.is_set():
        batches = await consumer.getmany(timeout_ms=100, max_records=1000)
        for partition, records in batches.items():
            for record in records:
                await producer.send_and_wait(dest, record.value, key=record.key, headers=list(record.headers))
                await consumer.commit({TopicPartition(partition.topic, partition.partition): record.offset + 1})


async def main(bootstrap: str, source: str, dest: str, group: str, mode: str, fetch_wait_ms: int) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    loop.add_signal_handler(signal.SIGINT, stopping.set)
    consumer = AIOKafkaConsumer(
        source, **kafka_options(bootstrap), group_id=group, enable_auto_commit=False, auto_offset_reset="earliest",
        fetch_max_wait_ms=fetch_wait_ms,
    )
    producer = new_producer(bootstrap)
    await producer.start()
    await consumer.start()
    try:
        await wait_for_positions(consumer)
        print("ready", flush=True)
        relay = relay_batches if mode == "batch" else relay_each
        await relay(consumer, producer, dest, stopping)
    finally:
        await consumer.stop()
        await producer.stop()


if __name__ == "__main__":
    bootstrap, source, dest, group = sys.argv[1:5]
    mode = sys.argv[5] if len(sys.argv) > 5 else "batch"
    fetch_wait_ms = int(sys.argv[6]) if len(sys.argv) > 6 else 500
    if mode not in ("batch", "per-message"):
        sys.exit(f"unknown mode {mode!r}")
    asyncio.run(main(bootstrap, source, dest, group, mode, fetch_wait_ms))
