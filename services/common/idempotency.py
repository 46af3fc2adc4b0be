"""Per-command decisions: made once, stored, replayed on every redelivery (I2).

A stage computes its decision (which may include its own idempotent side
effects), stores it under the command_id, and publishes what was stored. The
first stored decision wins: if two deliveries of one command race (a
redelivery overlapping the original), both publish the winner, never two
different outcomes (I1).
"""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from services.common.mongo import insert_new
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
        return (await self._record_each({command_id: decision}))[command_id]

    async def decide_once(
        self, command_id: str, decide: Callable[[], Awaitable[Decision]]
    ) -> Decision:
        async def decide_it(positions: list[int]) -> list[Decision]:
            return [await decide()]

        (decision,) = await self.decide_each([command_id], decide_it)
        return decision

    async def stored(self, command_ids: Sequence[str]) -> dict[str, Decision]:
        """The stored decisions of these commands, with one query."""
        return {
            doc["_id"]: Decision.from_document(doc)
            for doc in await self._collection.find({"_id": {"$in": list(set(command_ids))}}).to_list()
        }

    async def decide_each(
        self, command_ids: Sequence[str], decide: Callable[[list[int]], Awaitable[list[Decision]]],
        stored: dict[str, Decision] | None = None,
    ) -> list[Decision]:
        """`decide_once` for a batch, in one pass: the stored decisions read with
        one query (or given, as `stored` read them), `decide` called once with the
        positions of the commands without one (the first of each command_id), the
        new ones stored with one unordered insert. Returns the decision that stands
        for every position; a command met twice gets its first decision twice."""
        stored = dict(await self.stored(command_ids) if stored is None else stored)
        first: dict[str, int] = {}
        for position, command_id in enumerate(command_ids):
            if command_id not in stored:
                first.setdefault(command_id, position)
        if first:
            decided = dict(zip(first, await decide(list(first.values())), strict=True))
            stored |= await self._record_each(decided)
        return [stored[command_id] for command_id in command_ids]

    async def decide_pure_each(
        self, command_ids: Sequence[str], decide: Callable[[list[int]], Awaitable[list[Decision]]]
    ) -> list[Decision]:
        """`decide_each` for decisions that change nothing but their own record (a
        screening): every command decided without reading first, and only those
        whose insert met a stored decision read back. One round trip instead of two
        when nothing is redelivered; the stored decision still wins."""
        return await self.decide_each(command_ids, decide, stored={})

    async def _record_each(self, decided: dict[str, Decision]) -> dict[str, Decision]:
        """Store the decisions unless stored meanwhile; return the ones that stand."""
        raced = await insert_new(self._collection, [decision.to_document(command_id) for command_id, decision in decided.items()])
        if not raced:
            return decided
        standing = await self._collection.find({"_id": {"$in": raced}}).to_list()  # another delivery stored first
        return decided | {doc["_id"]: Decision.from_document(doc) for doc in standing}
