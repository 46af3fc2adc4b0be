"""What /readyz knows about consuming: the last failure being waited out, and
which record each partition is on (a record unfinished for too long, or seen
again, is the sign of a poison loop or a stuck handler)."""

import time
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition


class Health:
    """The last transient failure seen while consuming, for /readyz."""

    def __init__(self) -> None:
        self.degraded_reason: str | None = None

    def mark_degraded(self, reason: str) -> None:
        self.degraded_reason = reason

    def mark_recovered(self) -> None:
        self.degraded_reason = None


@dataclass
class _Unfinished:
    consumer: Any
    offset: int
    since: float


class RecordTracker:
    """Per consumer and partition: the highest offset this process has started,
    and the record it has not finished yet (handled or dead-lettered, so about
    to be committed). A record left uncommitted and delivered again keeps the
    time it was first seen, so a redelivery loop shows as one stuck record."""

    def __init__(self, stuck_after_seconds: float) -> None:
        self.stuck_after_seconds = stuck_after_seconds
        self._highest: dict[tuple[int, str, int], int] = {}
        self._unfinished: dict[tuple[int, str, int], _Unfinished] = {}

    def started(self, consumer: Any, topic: str, partition: int, offset: int) -> bool:
        """Note a record being handled; True when this consumer has seen its offset before."""
        key = (id(consumer), topic, partition)
        highest = self._highest.get(key, -1)
        self._highest[key] = max(highest, offset)
        unfinished = self._unfinished.get(key)
        if unfinished is None or unfinished.offset != offset:
            self._unfinished[key] = _Unfinished(consumer, offset, time.monotonic())
        return offset <= highest

    def finished(self, consumer: Any, topic: str, partition: int, offset: int) -> None:
        key = (id(consumer), topic, partition)
        unfinished = self._unfinished.get(key)
        if unfinished is not None and unfinished.offset == offset:
            del self._unfinished[key]

    def stuck(self) -> list[str]:
        """Records unfinished for longer than allowed, on partitions still owned."""
        now = time.monotonic()
        return [
            f"{topic} partition {partition} offset {record.offset} unfinished for {now - record.since:.0f} s"
            for (_, topic, partition), record in self._unfinished.items()
            if now - record.since > self.stuck_after_seconds and _still_owns(record.consumer, topic, partition)
        ]


def _still_owns(consumer: Any, topic: str, partition: int) -> bool:
    """A partition that moved to another consumer is that consumer's record now."""
    assignment = getattr(consumer, "assignment", None)
    return assignment is None or TopicPartition(topic, partition) in assignment()
