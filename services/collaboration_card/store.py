"""Cards, one document per card, and the claims that decide "once" (R18).

"Only once" (one response per target collaboration, one review per sample request) is
won by inserting a claim with a unique `_id`: FerretDB v1 does not apply conditional
updates atomically under concurrency, while unique inserts are atomic. The claim names
the command that won it, so a redelivery of the winner still sees itself as the winner.
After a claim, each fact is written by its single winner with a plain `$set`.
"""

from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from im_contracts import MessageKind, SampleDecision, SampleRequestStatus

_SAMPLE_STATUS_QUERY: dict[SampleRequestStatus, dict[str, Any]] = {
    SampleRequestStatus.PENDING: {"review": None},
    SampleRequestStatus.APPROVED: {"review.decision": str(SampleDecision.APPROVE)},
    SampleRequestStatus.REJECTED: {"review.decision": str(SampleDecision.REJECT)},
}


class CardStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.cards = db["cards"]
        self.claims = db["card_claims"]

    async def ensure_indexes(self) -> None:
        await self.cards.create_index(
            [("seller_id", ASCENDING), ("kind", ASCENDING), ("created_at", DESCENDING)], name="seller_kind_newest"
        )

    async def find(self, card_id: str) -> dict[str, Any] | None:
        return await self.cards.find_one({"_id": card_id})

    async def add(self, card: dict[str, Any]) -> None:
        """Store a new card; the same command stored it already if its id exists."""
        try:
            await self.cards.insert_one(card)
        except DuplicateKeyError:
            pass

    async def claim(self, claim_id: str, command_id: str) -> str:
        """Claim `claim_id` for `command_id`; returns the command that holds it."""
        try:
            await self.claims.insert_one({"_id": claim_id, "command_id": command_id, "claimed_at": datetime.now(UTC)})
            return command_id
        except DuplicateKeyError:
            holder = await self.claims.find_one({"_id": claim_id})
            assert holder is not None  # claims are never deleted
            return holder["command_id"]

    async def record(self, card_id: str, facts: dict[str, Any]) -> None:
        """Write facts of which the caller is the single writer (see the module docstring)."""
        await self.cards.update_one({"_id": card_id}, {"$set": facts})

    async def sample_requests(
        self, seller_id: str, status: SampleRequestStatus | None, limit: int
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"seller_id": seller_id, "kind": str(MessageKind.SAMPLE_REQUEST)}
        if status is not None:
            query.update(_SAMPLE_STATUS_QUERY[status])
        cursor = self.cards.find(query).sort([("created_at", DESCENDING), ("_id", DESCENDING)]).limit(limit)
        return await cursor.to_list()
