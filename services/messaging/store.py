"""Messages, one document per command_id, numbered per conversation; bulk jobs.

seq is claimed with a unique (conversation_id, seq) index rather than a
counter: FerretDB v1 does not apply `$inc` atomically under concurrency, while
unique-index inserts are atomic on every MongoDB-wire server. A crash can
therefore never leave a gap: a seq exists only as a stored message (R1, I5).

FerretDB v1 looks documents up by `_id` only; any other filter scans the
collection. So the hot paths read a hint by `_id` (a conversation's last seq,
a bulk's outcome tally) and fall back to a scan only when the hint proves
stale: hints never decide anything, the unique inserts do.
"""

import uuid
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from im_contracts import SendAdmitted

from services.common.mongo import Hint
from services.common.outbox import Outgoing
from services.messaging.domain import new_message_document


class MessageStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.messages = db["messages"]
        self.heads = db["conversation_heads"]
        self.last_seq_hint = Hint(self.heads, "seq")  # never above the real last seq, maybe below

    async def ensure_indexes(self) -> None:
        await self.messages.create_index(
            [("conversation_id", ASCENDING), ("seq", ASCENDING)], unique=True, name="conversation_seq"
        )

    async def find(self, command_id: str) -> dict[str, Any] | None:
        return await self.messages.find_one({"_id": command_id})

    async def last_seq(self, conversation: str) -> int:
        last = await self.messages.find_one(
            {"conversation_id": conversation}, {"seq": 1}, sort=[("seq", DESCENDING)]
        )
        return last["seq"] if last else 0

    async def deliver(self, admitted: SendAdmitted, conversation: str) -> dict[str, Any]:
        """Store the message once; a redelivered command gets the stored one back."""
        seq = await self.last_seq_hint.get(conversation) + 1
        while True:
            doc = new_message_document(
                admitted,
                seq=seq,
                message_id=uuid.uuid4().hex,
                event_id=uuid.uuid4().hex,
                delivered_at=datetime.now(UTC),
            )
            try:
                await self.messages.insert_one(doc)
            except DuplicateKeyError:
                existing = await self.find(admitted.command_id)
                if existing is not None:
                    return existing  # a redelivery: the first stored message stands
                seq = await self.last_seq(conversation) + 1  # the hint was behind, or another owner took that seq
                continue
            await self.last_seq_hint.raise_to(conversation, seq)
            return doc

    async def page(self, conversation: str, before_seq: int | None, limit: int) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"conversation_id": conversation}
        if before_seq is not None:
            query["seq"] = {"$lt": before_seq}
        cursor = self.messages.find(query).sort("seq", DESCENDING).limit(limit)
        return await cursor.to_list()


class BulkStore:
    """Bulk jobs, one outcome per fan-out command, one completion per job.

    Every write that must happen once is an insert against a unique key (the
    job, each outcome, each tally slot, the completion): on FerretDB v1 that is
    the only write that stays correct when two instances or a redelivery race.

    Outcomes are counted by claiming tally slots `<bulk_id>#1`, `#2`, … in
    order, each claimed after its outcome is stored (a redelivery racing its
    original, or one after a crash before the slot was noted, may claim
    another: the count can run ahead, never behind). Whoever claims a slot at
    or past the job's total checks the outcomes themselves; slots are claimed
    in order, so the highest is claimed last, after every outcome was stored:
    completion is never missed.
    """

    def __init__(self, db: AsyncDatabase) -> None:
        self.jobs = db["bulk_jobs"]
        self.outcomes = db["bulk_outcomes"]
        self.tally = db["bulk_tally"]
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
        # Not atomic on FerretDB, and need not be: a lower note only makes a
        # restart re-publish sends that every stage already handles idempotently.
        await self.jobs.update_one({"_id": bulk_id}, {"$max": {"fanned_out": fanned_out}})

    async def count_outcome(self, job: dict[str, Any], outcome: dict[str, Any]) -> int:
        """Store a fan-out's outcome once (I1 makes the first the only one), then
        count it: the tally slot claimed for it, always after it was stored."""
        try:
            await self.outcomes.insert_one(outcome)
        except DuplicateKeyError:
            stored = await self.outcomes.find_one({"_id": outcome["_id"]})
            if stored is not None and "slot" in stored:
                return stored["slot"]
        slot = job.get("tallied", 0) + 1  # a hint: every slot up to it is taken
        while True:
            try:
                await self.tally.insert_one({"_id": f"{job['_id']}#{slot}", "outcome_id": outcome["_id"]})
                break
            except DuplicateKeyError:
                slot += 1
        await self.outcomes.update_one({"_id": outcome["_id"]}, {"$set": {"slot": slot}})
        await self.jobs.update_one({"_id": job["_id"]}, {"$max": {"tallied": slot}})
        return slot

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
