"""Messages, one document per command_id, numbered per conversation; bulk jobs.

A conversation's next seq comes from its counter document, `$inc`-ed by one
`find_one_and_update`; the counter also names the command that took the seq.
So a command redelivered after a crash between taking its seq and storing its
message stores it under the very seq it took, and two deliveries of one command
share one seq: a seq exists only as a stored message, with no gap (R1, I5). The
unique (conversation_id, seq) index guards the numbering against a counter that
ever fell behind its messages.
"""

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from im_contracts import SendAdmitted

from services.common.outbox import Outgoing
from services.messaging.domain import new_message_document


class MessageStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.messages = db["messages"]
        self.counters = db["conversation_counters"]  # {_id: conversation, seq: the last seq taken, command_id: its taker}

    async def ensure_indexes(self) -> None:
        await self.messages.create_index(
            [("conversation_id", ASCENDING), ("seq", ASCENDING)], unique=True, name="conversation_seq"
        )

    async def find(self, command_id: str) -> dict[str, Any] | None:
        return await self.messages.find_one({"_id": command_id})

    async def deliver(self, admitted: SendAdmitted, conversation: str) -> dict[str, Any]:
        """Store the message once; a redelivered command gets the stored one back."""
        command_id = admitted.command_id
        while True:
            stored, counter = await asyncio.gather(self.find(command_id), self.counters.find_one({"_id": conversation}))
            if stored is not None:
                return stored
            if counter is not None and counter["command_id"] == command_id:
                seq = counter["seq"]  # taken by this command before a crash (or by its other delivery)
            else:
                try:
                    before = await self.counters.find_one_and_update(
                        {"_id": conversation, "command_id": {"$ne": command_id}},
                        {"$inc": {"seq": 1}, "$set": {"command_id": command_id}},
                        upsert=True,
                        return_document=ReturnDocument.BEFORE,  # atomic with the change on every engine
                    )
                except DuplicateKeyError:
                    continue  # this command's other delivery took a seq meanwhile, or a racing first upsert won
                seq = (before["seq"] if before else 0) + 1
            doc = new_message_document(
                admitted, seq=seq, message_id=uuid.uuid4().hex, event_id=uuid.uuid4().hex, delivered_at=datetime.now(UTC)
            )
            try:
                await self.messages.insert_one(doc)
                return doc
            except DuplicateKeyError:
                stored = await self.find(command_id)
                if stored is None:
                    raise  # seq taken by another command: the counter is behind its messages
                return stored  # this command's other delivery stored it first

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

    async def count_outcome(self, job: dict[str, Any], outcome: dict[str, Any]) -> int:
        """Store a fan-out's outcome once (I1 makes the first the only one), then
        count it; returns the count it got, always taken after it was stored."""
        try:
            await self.outcomes.insert_one(outcome)
        except DuplicateKeyError:
            stored = await self.outcomes.find_one({"_id": outcome["_id"]})
            if stored is not None and "tallied" in stored:
                return stored["tallied"]
        before = await self.jobs.find_one_and_update(
            {"_id": job["_id"]}, {"$inc": {"tallied": 1}}, {"tallied": 1}, return_document=ReturnDocument.BEFORE
        )
        tallied = before.get("tallied", 0) + 1
        await self.outcomes.update_one({"_id": outcome["_id"]}, {"$set": {"tallied": tallied}})
        return tallied

    async def outcomes_of(self, bulk_id: str) -> list[dict[str, Any]]:
        return await self.outcomes.find({"bulk_id": bulk_id}).to_list()

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
