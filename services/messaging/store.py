"""Messages, one document per command_id, numbered per conversation.

seq is claimed with a unique (conversation_id, seq) index rather than a
counter: FerretDB v1 does not apply `$inc` atomically under concurrency, while
unique-index inserts are atomic on every MongoDB-wire server. A crash can
therefore never leave a gap: a seq exists only as a stored message (R1, I5).
"""

import uuid
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from im_contracts import SendAdmitted

from services.common.outbox import Outgoing
from services.messaging.domain import new_message_document


class MessageStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.messages = db["messages"]

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
        while True:
            existing = await self.find(admitted.command_id)
            if existing is not None:
                return existing
            doc = new_message_document(
                admitted,
                seq=await self.last_seq(conversation) + 1,
                message_id=uuid.uuid4().hex,
                event_id=uuid.uuid4().hex,
                delivered_at=datetime.now(UTC),
            )
            try:
                await self.messages.insert_one(doc)
                return doc
            except DuplicateKeyError:
                continue  # another owner took that seq, or stored this command: look again

    async def page(self, conversation: str, before_seq: int | None, limit: int) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"conversation_id": conversation}
        if before_seq is not None:
            query["seq"] = {"$lt": before_seq}
        cursor = self.messages.find(query).sort("seq", DESCENDING).limit(limit)
        return await cursor.to_list()


class BulkStore:
    """Bulk jobs, one outcome per fan-out command, one completion per job.

    Every write that must happen once is an insert against a unique key (the
    job, each outcome, the completion): on FerretDB v1 that is the only write
    that stays correct when two instances or a redelivery race.
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
        # Not atomic on FerretDB, and need not be: a lower note only makes a
        # restart re-publish sends that every stage already handles idempotently.
        await self.jobs.update_one({"_id": bulk_id}, {"$max": {"fanned_out": fanned_out}})

    async def record_outcome(self, outcome: dict[str, Any]) -> None:
        """The first outcome of a fan-out command stands (I1 makes it the only one)."""
        try:
            await self.outcomes.insert_one(outcome)
        except DuplicateKeyError:
            pass

    async def count_outcomes(self, bulk_id: str) -> int:
        return await self.outcomes.count_documents({"bulk_id": bulk_id})

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
