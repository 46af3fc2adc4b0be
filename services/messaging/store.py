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
