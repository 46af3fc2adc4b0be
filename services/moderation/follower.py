"""Moderation's blocks and seller access, served from memory (the issue's
"read-mostly state a service owns") instead of one store read per batch of sends.

Every instance follows all partitions of im.moderation.events outside any group,
from the end offsets it saw before reading the store's subjects, so it knows the
store's state plus every change since (services.moderation.known). A batch is
screened from memory only once every event published before the batch was
judged has been learned (`_caught_up`: the topic's end offsets, one ListOffsets
request to Kafka instead of a query to the database): a send published after a
block's event was acknowledged is refused, as when the store was read. A block
stored by a command whose event is not yet published (a crash in between) takes
effect when its redelivery publishes the event. Until the follower runs (the
in-memory test broker never starts it), when it has stopped, and when it cannot
catch up in time, the store is read instead."""

import asyncio
import contextlib

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from im_contracts import ContractError, parse
from im_contracts.topics import MODERATION_EVENTS

from services.common.kafka_client import client_options, partitions_of
from services.common.runtime import ServiceRuntime
from services.moderation.domain import ScreeningFacts, change_of
from services.moderation.known import KnownSubjects
from services.moderation.store import ModerationStore

CATCH_UP_SECONDS = 5.0
"""How long a batch waits for the follower before it reads the store instead."""


class SubjectFollower:
    def __init__(self, runtime: ServiceRuntime, store: ModerationStore) -> None:
        self.runtime = runtime
        self.store = store
        self.known = KnownSubjects()
        self.log = runtime.log.bind(component="subject-follower")
        self._consumer: AIOKafkaConsumer | None = None
        # End offsets asked on a connection of their own: the broker answers one
        # request per connection at a time, and the follower's fetch waits there
        # up to fetch_max_wait_ms (500) for new events.
        self._offsets: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._learned: dict[TopicPartition, int] = {}  # per partition, the offset after the last event learned
        self._progress = asyncio.Condition()

    @property
    def following(self) -> bool:
        return self._task is not None and not self._task.done()

    async def screening_facts_each(self, pairs: list[tuple[str, str]]) -> list[ScreeningFacts]:
        """The facts of each (seller, creator) pair: from memory once caught up, else from the store."""
        if self.following and await self._caught_up():
            return self.known.screening_facts_each(pairs)
        return await self.store.screening_facts_each(pairs)

    async def start(self) -> None:
        settings = self.runtime.settings
        consumer, offsets = (
            AIOKafkaConsumer(**client_options(settings), group_id=None, enable_auto_commit=False, client_id=f"im-{settings.service_name}-{role}")
            for role in ("subjects", "subject-offsets")
        )
        await consumer.start()
        await offsets.start()
        try:
            partitions = await partitions_of(settings, MODERATION_EVENTS)
            if not partitions:
                raise LookupError(f"topic {MODERATION_EVENTS} has no partitions")
            consumer.assign(partitions)
            learned = await consumer.end_offsets(partitions)  # before the store is read, so no change falls between
            for tp, offset in learned.items():
                consumer.seek(tp, offset)
            async for key, known in self.store.known_states():
                self.known.set(key, known)
        except BaseException:
            await consumer.stop()
            await offsets.stop()
            raise
        self._consumer, self._offsets, self._learned = consumer, offsets, learned
        self._task = asyncio.create_task(self._follow())
        self.log.info("blocks and seller access served from memory", subjects=len(self.known), partitions=len(partitions))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for client in (self._consumer, self._offsets):
            if client is not None:
                await client.stop()

    async def _follow(self) -> None:
        assert self._consumer is not None
        try:
            while True:
                fetched = await self._consumer.getmany(timeout_ms=1_000)
                for tp, records in fetched.items():
                    for record in records:
                        await self._learn(record.value)
                    self._learned[tp] = records[-1].offset + 1
                if fetched:
                    async with self._progress:
                        self._progress.notify_all()
        except Exception:
            self.log.exception("stopped following moderation events; sends are screened from the store")
            async with self._progress:
                self._progress.notify_all()

    async def _learn(self, value: bytes | None) -> None:
        try:
            event = parse(MODERATION_EVENTS, value or b"")
        except ContractError:
            return  # not a change's event: the topic's group consumers dead-letter it
        subject, known = change_of(event)  # type: ignore[arg-type]
        if not self.known.learn(subject.key, known):
            stored = await self.runtime.wait_out(lambda: self.store.known_state(subject))
            if stored is not None:
                self.known.set(subject.key, stored)

    async def _caught_up(self) -> bool:
        """Whether every event published before the call is learned (False: the
        follower stopped, Kafka did not answer, or CATCH_UP_SECONDS passed)."""
        assert self._offsets is not None
        try:
            ends = await self._offsets.end_offsets(list(self._learned))
        except KafkaError as exc:
            self.log.warning("end offsets unknown; screening from the store", error=str(exc))
            return False

        def learned() -> bool:
            return not self.following or all(self._learned[tp] >= end for tp, end in ends.items())

        if learned():  # nearly always: no timer, no lock on a batch's way
            return self.following
        try:
            async with self._progress:
                await asyncio.wait_for(self._progress.wait_for(learned), CATCH_UP_SECONDS)
        except TimeoutError:
            self.log.warning("moderation events not learned in time; screening from the store", seconds=CATCH_UP_SECONDS)
            return False
        return self.following
