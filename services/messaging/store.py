"""Messages, one document per command_id, numbered per conversation; bulk jobs.

A conversation's seqs come from its counter document: a batch of sends takes the
next seqs of each of its conversations with one conditional update of each
counter (the seq it read), and the counter names the commands that took them
(`taken`). So a command redelivered after a crash between taking its seq and
storing its message stores it under the very seq it took, two deliveries of one
command share one seq, and of two consumers racing on one conversation (a
rebalance overlapping the old owner) only one takes those seqs: the other reads
again. A seq exists only as a stored message, with no gap (R1, I5). The unique
(conversation_id, seq) index guards the numbering against a counter that ever
fell behind its messages.

im.send.admitted is keyed so that one consumer owns a conversation: the counters
it last wrote or read are held in memory (`held_counters`, least recently used
dropped), and a batch reads only the others. A held counter is never trusted
blindly: taking seqs is conditional on the seq it shows, so one another writer
advanced meanwhile (a rebalance overlapping the old owner) fails the update, is
dropped, and read again. A rebalance drops them all (`forget_counters`).
"""

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, InsertOne, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from im_contracts import SendAdmitted, conversation_id

from services.common.held import hold
from services.common.mongo import all_applied, insert_new
from services.common.outbox import Outgoing
from services.messaging.domain import fan_out_command_ids, new_message_document


HELD_COUNTERS = 20_000  # about 500 bytes each (tracemalloc), 10 MiB


class MessageStore:
    def __init__(self, db: AsyncDatabase, held_counters: int = HELD_COUNTERS) -> None:
        self.messages = db["messages"]
        self.counters = db["conversation_counters"]  # {_id: conversation, seq: the last seq taken, taken: [[command, seq]]}
        self._held: dict[str, dict[str, Any]] = {}  # counters as last written or read, oldest use first
        self._held_limit = held_counters

    def forget_counters(self) -> None:
        self._held.clear()

    async def ensure_indexes(self) -> None:
        await self.messages.create_index(
            [("conversation_id", ASCENDING), ("seq", ASCENDING)], unique=True, name="conversation_seq"
        )

    async def find(self, command_id: str) -> dict[str, Any] | None:
        return await self.messages.find_one({"_id": command_id})

    async def deliver_each(self, sends: Sequence[SendAdmitted]) -> list[dict[str, Any]]:
        """Store each message once, in order per conversation; a redelivered command
        gets the stored one back. Returns the stored message of every send."""
        try:
            return await self._deliver_each(sends)
        except BaseException:  # a counter's update may have been applied unseen
            self.forget_counters()
            raise

    async def _deliver_each(self, sends: Sequence[SendAdmitted]) -> list[dict[str, Any]]:
        stored: dict[str, dict[str, Any]] = {}
        waiting = list({admitted.command_id: admitted for admitted in sends}.values())
        while waiting:
            # The messages and their conversations' counters read at once (a round trip
            # less; a stored command's counter is read for nothing). Seqs are taken by
            # conditional updates on the counters as read or held, so the reads' order is free.
            found, counters = await asyncio.gather(
                self.messages.find({"_id": {"$in": [a.command_id for a in waiting]}}).to_list(), self._counters_of(waiting))
            stored |= {doc["_id"]: doc for doc in found}
            waiting = [a for a in waiting if a.command_id not in stored]
            if not waiting:
                break
            seqs, lost = await self._take_seqs(waiting, counters)
            stored |= await self._store(
                [admitted for admitted in waiting if admitted.command_id in seqs], seqs)
            waiting = [admitted for admitted in waiting if admitted.command_id in lost]
        return [stored[admitted.command_id] for admitted in sends]

    async def _counters_of(self, sends: list[SendAdmitted]) -> dict[str, dict[str, Any]]:
        """The conversations' counters: those held, the others read (and then held)."""
        conversations = {_conversation(admitted) for admitted in sends}
        found = {key: self._held[key] for key in conversations if key in self._held}
        if unknown := [key for key in conversations if key not in found]:
            found |= {doc["_id"]: doc for doc in await self.counters.find({"_id": {"$in": unknown}}).to_list()}
        for key, doc in found.items():
            hold(self._held, key, doc, self._held_limit)
        return found

    async def _take_seqs(
        self, sends: list[SendAdmitted], counters: dict[str, dict[str, Any]]
    ) -> tuple[dict[str, int], set[str]]:
        """The seq of every send (taken now, or before a crash) from the conversations'
        counters as read, and the sends of conversations another consumer took seqs
        of meanwhile (to read again)."""
        by_conversation: dict[str, list[str]] = {}
        for admitted in sends:
            by_conversation.setdefault(_conversation(admitted), []).append(admitted.command_id)
        seqs: dict[str, int] = {}
        updates: dict[str, Any] = {}
        for conversation, command_ids in by_conversation.items():
            counter = counters.get(conversation)
            already = dict(_taken(counter))
            seqs |= {command_id: already[command_id] for command_id in command_ids if command_id in already}
            last = counter["seq"] if counter else 0
            taken = [(command_id, last + n) for n, command_id in enumerate((c for c in command_ids if c not in already), 1)]
            if not taken:
                continue
            fields = {"seq": taken[-1][1], "taken": [list(pair) for pair in taken]}
            updates[conversation] = (
                UpdateOne({"_id": conversation, "seq": last}, {"$set": fields, "$unset": {"command_id": ""}})
                if counter else InsertOne({"_id": conversation, **fields}),
                taken,
            )
        if not updates:
            return seqs, set()
        raced = not await all_applied(self.counters, [op for op, _ in updates.values()])
        if raced:  # which conversations did this consumer lose?
            now = {doc["_id"]: doc for doc in await self.counters.find({"_id": {"$in": list(updates)}}).to_list()}
            won = {conversation for conversation, (_, taken) in updates.items()
                   if [list(pair) for pair in taken] == now.get(conversation, {}).get("taken")}
        else:
            won = set(updates)
        lost: set[str] = set()
        for conversation, (_, taken) in updates.items():
            if conversation in won:
                seqs |= dict(taken)
                counter = {"_id": conversation, "seq": taken[-1][1], "taken": [list(pair) for pair in taken]}
                hold(self._held, conversation, counter, self._held_limit)
            else:
                lost |= {command_id for command_id, _ in taken}
                self._held.pop(conversation, None)  # another writer's: read it again
        return seqs, lost

    async def _store(self, sends: list[SendAdmitted], seqs: dict[str, int]) -> dict[str, dict[str, Any]]:
        """Insert the messages; one stored first by another delivery stands."""
        now = datetime.now(UTC)
        docs = {
            admitted.command_id: new_message_document(
                admitted, seq=seqs[admitted.command_id], message_id=uuid.uuid4().hex, event_id=uuid.uuid4().hex, delivered_at=now
            )
            for admitted in sends
        }
        if not docs:
            return {}
        raced = await insert_new(self.messages, list(docs.values()))
        first = {doc["_id"]: doc for doc in await self.messages.find({"_id": {"$in": raced}}).to_list()} if raced else {}
        if missing := set(raced) - set(first):
            # a seq taken by another command: the counter is behind its messages
            raise RuntimeError(f"conversation counter behind its messages for {sorted(missing)}")
        return docs | first

    async def page(self, conversation: str, before_seq: int | None, limit: int) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"conversation_id": conversation}
        if before_seq is not None:
            query["seq"] = {"$lt": before_seq}
        cursor = self.messages.find(query).sort("seq", DESCENDING).limit(limit)
        return await cursor.to_list()


class BulkStore:
    """Bulk jobs, one outcome per fan-out command, one completion per job.

    The job, each outcome and the completion are stored once (unique `_id`s, the
    first stored stands). Outcomes are counted by `$inc` of the job's `tallied`,
    each after its outcome is stored; an outcome remembers the count it got, so a
    redelivery does not count it again. A crash between storing and counting, or
    two deliveries racing, may count one twice: the count can run ahead, never
    behind, and whoever reaches the job's total checks the outcomes themselves.
    """

    def __init__(self, db: AsyncDatabase) -> None:
        self.jobs = db["bulk_jobs"]
        self.outcomes = db["bulk_outcomes"]
        self.completions = db["bulk_completions"]

    async def ensure_indexes(self) -> None:
        await self.outcomes.create_index("bulk_id", name="bulk_id")

    async def record_job(self, job: dict[str, Any]) -> dict[str, Any]:
        """Store the job unless it exists; the first stored job stands."""
        try:
            await self.jobs.insert_one(job)
            return job
        except DuplicateKeyError:
            stored = await self.find_job(job["_id"])
            assert stored is not None
            return stored

    async def find_job(self, bulk_id: str) -> dict[str, Any] | None:
        return await self.jobs.find_one({"_id": bulk_id})

    async def note_progress(self, bulk_id: str, fanned_out: int) -> None:
        await self.jobs.update_one({"_id": bulk_id}, {"$max": {"fanned_out": fanned_out}})

    async def find_jobs(self, bulk_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return {doc["_id"]: doc for doc in await self.jobs.find({"_id": {"$in": list(bulk_ids)}}).to_list()}

    async def count_outcomes(self, job: dict[str, Any], outcomes: list[dict[str, Any]]) -> int:
        """Store the job's fan-out outcomes once each (I1 makes the first the only
        one), then count the ones not counted before with one `$inc`; returns the
        highest count they got, always taken after they were stored."""
        if await insert_new(self.outcomes, outcomes):
            stored = await self.outcomes.find({"_id": {"$in": [outcome["_id"] for outcome in outcomes]}}).to_list()
            uncounted = [doc["_id"] for doc in stored if "tallied" not in doc]
            highest = max((doc["tallied"] for doc in stored if "tallied" in doc), default=0)
        else:
            uncounted, highest = [outcome["_id"] for outcome in outcomes], 0
        if not uncounted:
            return highest
        before = await self.jobs.find_one_and_update(
            {"_id": job["_id"]}, {"$inc": {"tallied": len(uncounted)}}, {"tallied": 1}, return_document=ReturnDocument.BEFORE
        )
        first = before.get("tallied", 0) + 1
        await self.outcomes.bulk_write(
            [UpdateOne({"_id": command_id}, {"$set": {"tallied": first + n}}) for n, command_id in enumerate(uncounted)],
            ordered=False,
        )
        return max(highest, first + len(uncounted) - 1)

    async def outcomes_of(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        return await self.outcomes.find({"_id": {"$in": fan_out_command_ids(job)}}).to_list()

    async def find_completion(self, bulk_id: str) -> dict[str, Any] | None:
        return await self.completions.find_one({"_id": bulk_id})

    async def record_completion(self, bulk_id: str, outgoing: Outgoing) -> dict[str, Any]:
        """Store the summary unless one exists; the first stored summary stands."""
        doc = {"_id": bulk_id, "outgoing": outgoing.to_document(), "published": False}
        try:
            await self.completions.insert_one(doc)
            return doc
        except DuplicateKeyError:
            stored = await self.find_completion(bulk_id)
            assert stored is not None
            return stored

    async def mark_published(self, bulk_id: str) -> None:
        await self.completions.update_one({"_id": bulk_id}, {"$set": {"published": True}})


def _conversation(admitted: SendAdmitted) -> str:
    return conversation_id(admitted.send.seller_id, admitted.send.creator_id)


def _taken(counter: dict[str, Any] | None) -> list[tuple[str, int]]:
    """The commands that took the counter's last seqs (`command_id`: as stored before batches)."""
    if counter is None:
        return []
    if "taken" in counter:
        return [(command_id, seq) for command_id, seq in counter["taken"]]
    return [(counter["command_id"], counter["seq"])] if counter.get("command_id") else []
