"""A send-path consumer's commits (services.common.batching.BackgroundCommits): the
handled records' own offsets, one commit in flight, what is handled meanwhile riding
the next, partitions no longer assigned left out."""

import asyncio
from dataclasses import dataclass

from aiokafka import TopicPartition

from services.common.batching import BackgroundCommits

A, B, GONE = TopicPartition("t", 0), TopicPartition("t", 1), TopicPartition("t", 2)


@dataclass
class Record:
    topic: str
    partition: int
    offset: int


def records(tp: TopicPartition, *offsets: int) -> list[Record]:
    return [Record(tp.topic, tp.partition, offset) for offset in offsets]


class Consumer:
    """What BackgroundCommits uses of an AIOKafkaConsumer; each commit waits for `release`."""

    def __init__(self, *assigned: TopicPartition) -> None:
        self.assigned = set(assigned)
        self.commits: list[dict[TopicPartition, int]] = []
        self.release = asyncio.Event()
        self.release.set()

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))
        await self.release.wait()


async def test_the_next_offset_after_the_highest_handled_record_of_each_partition_is_committed() -> None:
    commits, consumer = BackgroundCommits(interval=0), Consumer(A, B)
    commits.handled(consumer, records(A, 3, 4, 5) + records(B, 9))
    await commits.flush()
    assert consumer.commits == [{A: 6, B: 10}]


async def test_fetches_handled_while_a_commit_is_in_flight_ride_the_next_one() -> None:
    commits, consumer = BackgroundCommits(interval=0), Consumer(A, B)
    consumer.release.clear()
    commits.handled(consumer, records(A, 1))
    await asyncio.sleep(0)  # the first commit is in flight
    commits.handled(consumer, records(A, 2))
    commits.handled(consumer, records(A, 3) + records(B, 7))
    consumer.release.set()
    await commits.flush()
    assert consumer.commits == [{A: 2}, {A: 4, B: 8}]


async def test_partitions_no_longer_assigned_are_left_to_their_new_owner() -> None:
    commits, consumer = BackgroundCommits(interval=0), Consumer(A)
    commits.handled(consumer, records(A, 1) + records(GONE, 5))
    await commits.flush()
    assert consumer.commits == [{A: 2}]


async def test_a_new_consumer_never_commits_what_the_old_one_handled() -> None:
    commits, old, new = BackgroundCommits(interval=0), Consumer(A), Consumer(A)
    old.release.clear()
    commits.handled(old, records(A, 1))
    await asyncio.sleep(0)
    commits.handled(old, records(A, 2))  # pending when the subscriber restarts
    commits.handled(new, records(A, 0))
    old.release.set()
    await commits.flush()
    assert old.commits == [{A: 2}] and new.commits == [{A: 1}]


async def test_commits_are_spaced_by_the_interval() -> None:
    commits, consumer = BackgroundCommits(interval=0.2), Consumer(A)
    loop = asyncio.get_running_loop()
    started = loop.time()
    commits.handled(consumer, records(A, 1))
    await asyncio.sleep(0)
    commits.handled(consumer, records(A, 2))
    await commits.flush()
    assert consumer.commits == [{A: 2}, {A: 3}]
    assert loop.time() - started >= 0.19


async def test_a_failed_commit_is_logged_and_the_next_fetch_commits_again() -> None:
    class Failing(Consumer):
        async def commit(self, offsets: dict[TopicPartition, int]) -> None:
            await super().commit(offsets)
            if len(self.commits) == 1:
                raise RuntimeError("rebalance in progress")

    commits, consumer = BackgroundCommits(interval=0), Failing(A)
    commits.handled(consumer, records(A, 1))
    await commits.flush()
    commits.handled(consumer, records(A, 2))
    await commits.flush()
    assert consumer.commits == [{A: 2}, {A: 3}]
