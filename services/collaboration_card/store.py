"""Cards, one document per card (R18).

"Only once" (one response per target collaboration, one review per sample request) is
one update of the card conditional on the answer being absent: the first command to
set it wins. The answer names its command, so a redelivery of the winner still sees
itself as the winner. Every other fact has one writer and is a plain `$set`.
"""

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

    async def answer_once(self, card_id: str, field: str, facts: dict[str, Any]) -> str:
        """Set the card's `field` to `facts` unless it has an answer; returns the command
        whose answer stands (`facts["command_id"]` if this call set it)."""
        await self.cards.update_one({"_id": card_id, field: None}, {"$set": {field: facts}})
        card = await self.cards.find_one({"_id": card_id}, {field: 1})
        assert card is not None and card.get(field) is not None  # answers are never removed
        return card[field]["command_id"]

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
