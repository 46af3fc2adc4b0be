"""Per-command decisions: made once, stored, replayed on every redelivery (I2).

A stage computes its decision (which may include its own idempotent side
effects), stores it under the command_id, and publishes what was stored. The
first stored decision wins: if two deliveries of one command race (a
redelivery overlapping the original), both publish the winner, never two
different outcomes (I1).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from services.common.outbox import Outgoing


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: str
    outgoing: tuple[Outgoing, ...] = ()
    facts: dict[str, Any] = field(default_factory=dict)

    def to_document(self, command_id: str) -> dict[str, Any]:
        return {
            "_id": command_id,
            "outcome": self.outcome,
            "outgoing": [record.to_document() for record in self.outgoing],
            "facts": self.facts,
            "decided_at": datetime.now(UTC),
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> "Decision":
        return cls(
            outcome=doc["outcome"],
            outgoing=tuple(Outgoing.from_document(d) for d in doc.get("outgoing", [])),
            facts=doc.get("facts", {}),
        )


class DecisionStore:
    def __init__(self, collection: AsyncCollection) -> None:
        self._collection = collection

    async def ensure_indexes(self) -> None:
        await self._collection.create_index("decided_at")

    async def find(self, command_id: str) -> Decision | None:
        doc = await self._collection.find_one({"_id": command_id})
        return Decision.from_document(doc) if doc else None

    async def record(self, command_id: str, decision: Decision) -> Decision:
        """Store the decision unless one exists; return the one that stands."""
        try:
            await self._collection.insert_one(decision.to_document(command_id))
            return decision
        except DuplicateKeyError:
            existing = await self.find(command_id)
            assert existing is not None
            return existing

    async def decide_once(
        self, command_id: str, decide: Callable[[], Awaitable[Decision]]
    ) -> Decision:
        existing = await self.find(command_id)
        if existing is not None:
            return existing
        return await self.record(command_id, await decide())
