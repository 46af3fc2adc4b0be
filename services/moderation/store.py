"""Moderation's state: blocks both ways and seller access, one document per subject.

A subject (a seller blocking a creator, a creator blocking a seller, a seller's
access) is one document, `_id` the subject's key, holding its state, its version
and its history: every change a command made, with the event it published. A
command changes a subject with one update of that document conditional on the
version it judged, so of two commands racing on one subject (a rebalance
overlapping the old owner), or two deliveries of one command, only one wins
that version: the loser reads again, and judges again or finds itself applied.

A command redelivered after a crash between changing the subject and storing
its decision finds itself in the history and republishes the very same event (I2)
instead of judging itself "already done" and publishing nothing. A batch of sends
reads all their subjects with one `_id` query.
"""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from im_contracts import SellerAccessStatus, new_event_id
from im_contracts.topics import MODERATION_EVENTS

from services.common.idempotency import Decision
from services.common.outbox import Outgoing
from services.moderation.domain import (
    BLOCKED,
    KnownState,
    ModerationCommandModel,
    ScreeningFacts,
    Subject,
    SubjectKind,
    Verdict,
    event_for,
    intent_of,
    judge,
    screening_facts,
    screening_subjects,
    seller_access,
)


SNAPSHOT_BATCH = 5_000
KNOWN_FIELDS = {"state": 1, "as_of_us": 1}


class ModerationStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.subjects = db["subjects"]

    async def ensure_indexes(self) -> None:
        await self.subjects.create_index([("seller_id", ASCENDING), ("kind", ASCENDING)], name="seller_kind")

    # --- commands ----------------------------------------------------------

    async def apply(self, command: ModerationCommandModel) -> Decision:
        """Apply a command once. Its decision: the event of a real change, or nothing."""
        intent = intent_of(command)
        key = intent.subject.key
        while True:
            current = await self.subjects.find_one({"_id": key})
            applied = next((v for v in current["history"] if v["command_id"] == command.command_id), None) if current else None
            if applied is not None:
                return _decision_of(command, applied)
            known = _known_of(current)
            verdict = judge(intent.subject, known, intent.state, command.occurred_at)
            if verdict is Verdict.STALE:
                return Decision(outcome=f"{command.type}:{verdict}")
            event = Outgoing.of(MODERATION_EVENTS, event_for(command, new_event_id())) if verdict is Verdict.CHANGED else None
            version = {
                "version": (current["version"] if current else 0) + 1,
                "state": intent.state,
                "as_of": command.occurred_at,
                "as_of_us": _micros(command.occurred_at),  # BSON dates keep only milliseconds
                "command_id": command.command_id,
                "verdict": str(verdict),
                "event": event.to_document() if event else None,
            }
            if await self._change(intent.subject, current, version):
                return _decision_of(command, version)
            # another command changed the subject since it was read, or this one's other delivery did: look again

    async def _change(self, subject: Subject, current: dict[str, Any] | None, version: dict[str, Any]) -> bool:
        head = {"state": version["state"], "as_of_us": version["as_of_us"], "version": version["version"]}
        if current is None:
            try:
                await self.subjects.insert_one({
                    "_id": subject.key, "kind": str(subject.kind), "seller_id": subject.seller_id,
                    "creator_id": subject.creator_id, **head, "history": [version],
                })
                return True
            except DuplicateKeyError:
                return False
        changed = await self.subjects.update_one(
            {"_id": subject.key, "version": current["version"]},
            {"$set": head, "$push": {"history": version}},
        )
        return changed.modified_count == 1

    # --- reads ---------------------------------------------------------------

    async def _states(self, *subjects: Subject) -> list[str]:
        found = {doc["_id"]: doc["state"] for doc in await self.subjects.find(
            {"_id": {"$in": list({subject.key for subject in subjects})}}, {"state": 1}).to_list()}
        return [found.get(subject.key, subject.initial_state) for subject in subjects]

    async def state_of(self, subject: Subject) -> str:
        (state,) = await self._states(subject)
        return state

    async def access_of(self, seller_id: str) -> SellerAccessStatus:
        return SellerAccessStatus(await self.state_of(seller_access(seller_id)))

    async def history_of(self, subject: Subject) -> list[dict[str, Any]]:
        """Every change of the subject, oldest first."""
        doc = await self.subjects.find_one({"_id": subject.key}, {"history": 1})
        return doc["history"] if doc else []

    async def screening_facts_each(self, pairs: list[tuple[str, str]]) -> list[ScreeningFacts]:
        """The facts of each (seller, creator) pair, all read with one `_id` query."""
        return screening_facts(await self._states(*screening_subjects(pairs)))

    async def known_states(self) -> AsyncIterator[tuple[str, KnownState]]:
        """Every subject's state, read in batches (what a follower starts from)."""
        async for doc in self.subjects.find({}, KNOWN_FIELDS).batch_size(SNAPSHOT_BATCH):
            yield doc["_id"], _known_of(doc)

    async def known_state(self, subject: Subject) -> KnownState | None:
        doc = await self.subjects.find_one({"_id": subject.key}, KNOWN_FIELDS)
        return _known_of(doc)

    async def blocks_of(self, seller_id: str) -> dict[SubjectKind, list[str]]:
        """Creators currently blocked, per direction, sorted by creator id (an HTTP read)."""
        kinds = (SubjectKind.SELLER_BLOCKS_CREATOR, SubjectKind.CREATOR_BLOCKS_SELLER)
        cursor = self.subjects.find(
            {"seller_id": seller_id, "kind": {"$in": [str(k) for k in kinds]}, "state": BLOCKED}, {"kind": 1, "creator_id": 1}
        )
        blocked: dict[SubjectKind, list[str]] = {kind: [] for kind in kinds}
        for doc in await cursor.to_list():
            blocked[SubjectKind(doc["kind"])].append(doc["creator_id"])
        return {kind: sorted(creators) for kind, creators in blocked.items()}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _known_of(doc: dict[str, Any] | None) -> KnownState | None:
    return None if doc is None else KnownState(doc["state"], _from_micros(doc["as_of_us"]))


def _from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _decision_of(command: ModerationCommandModel, version: dict[str, Any]) -> Decision:
    event = version.get("event")
    return Decision(
        outcome=f"{command.type}:{version['verdict']}",
        outgoing=(Outgoing.from_document(event),) if event else (),
    )
