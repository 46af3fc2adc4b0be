"""Consumer lag of every group: committed offset against log end, per partition.

    python -m services.common.lag [--bootstrap-servers HOST:PORT] [--prefix im.] [--partitions]

It connects as the principal of KAFKA_CLIENT_PROPERTIES (im-ops: listing every group needs a super user).

`make lag` runs it against the local suite. Lag is what a group has not yet
committed: records still to handle, or handled but not yet committed.
"""

import argparse
import asyncio
import os
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from services.common.kafka_client import client_options
from services.common.settings import KafkaSettings


@dataclass(frozen=True, slots=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int | None  # None: the group never committed here
    end: int

    @property
    def lag(self) -> int:
        return self.end - (self.committed or 0)


async def group_lags(kafka: KafkaSettings, prefix: str = "im.") -> list[PartitionLag]:
    """Every partition of every group whose id starts with `prefix`."""
    admin = AIOKafkaAdminClient(**client_options(kafka))
    consumer = AIOKafkaConsumer(**client_options(kafka))
    await admin.start()
    await consumer.start()
    try:
        groups = sorted({group for group, *_ in await admin.list_consumer_groups() if group.startswith(prefix)})
        rows: list[PartitionLag] = []
        for group in groups:
            committed = await admin.list_consumer_group_offsets(group)
            topics = {tp.topic for tp in committed}
            partitions = [
                TopicPartition(topic, p) for topic in sorted(topics) for p in sorted(consumer.partitions_for_topic(topic) or ())
            ] or list(committed)
            ends = await consumer.end_offsets(partitions)
            for tp in sorted(ends, key=lambda tp: (tp.topic, tp.partition)):
                meta = committed.get(tp)
                offset = meta.offset if meta is not None and meta.offset >= 0 else None
                rows.append(PartitionLag(group, tp.topic, tp.partition, offset, ends[tp]))
        return rows
    finally:
        await consumer.stop()
        await admin.close()


def lag_by_group(rows: list[PartitionLag]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for row in rows:
        totals[row.group] = totals.get(row.group, 0) + row.lag
    return totals


def render(rows: list[PartitionLag], per_partition: bool) -> str:
    if not rows:
        return "no consumer groups with committed offsets"
    lines = [f"{'group':<40} {'topic':<28} {'partition':>9} {'committed':>10} {'end':>10} {'lag':>8}"]
    if per_partition:
        for r in rows:
            committed = "-" if r.committed is None else str(r.committed)
            lines.append(f"{r.group:<40} {r.topic:<28} {r.partition:>9} {committed:>10} {r.end:>10} {r.lag:>8}")
    else:
        by_group_topic: dict[tuple[str, str], list[PartitionLag]] = {}
        for r in rows:
            by_group_topic.setdefault((r.group, r.topic), []).append(r)
        for (group, topic), parts in by_group_topic.items():
            committed = sum(p.committed or 0 for p in parts)
            lines.append(f"{group:<40} {topic:<28} {'all':>9} {committed:>10} {sum(p.end for p in parts):>10} {sum(p.lag for p in parts):>8}")
    lines.append(f"total lag: {sum(r.lag for r in rows)}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bootstrap-servers", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"))
    parser.add_argument("--prefix", default="im.", help="consumer group id prefix (default: im.)")
    parser.add_argument("--partitions", action="store_true", help="one line per partition instead of per topic")
    args = parser.parse_args()
    kafka = KafkaSettings(kafka_bootstrap_servers=args.bootstrap_servers)
    print(render(asyncio.run(group_lags(kafka, args.prefix)), args.partitions))


if __name__ == "__main__":
    main()
