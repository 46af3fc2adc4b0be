"""Moderation's state: blocks both ways and seller access, as a versioned log.

Every subject (a seller blocking a creator, a creator blocking a seller, a
seller's access) is a sequence of versions; the highest version is the state.
A version is claimed by inserting `"<subject>#<n>"` as `_id`: inserts against a
unique key are atomic on FerretDB v1, unlike conditional updates, so two
commands racing on one subject (a rebalance overlapping the old owner) can never
both win version n. The loser re-reads and judges again. A second unique index,
(subject, command_id), gives each command at most one version, so two
deliveries of one command racing each other cannot both be stored.

A version remembers the command that made it and the event it published, so a
command redelivered after a crash between storing its change and storing its
decision still republishes the very same event (I2) instead of judging itself
"already done" and publishing nothing.

Every send reads three subjects, so reading one must stay cheap however many
versions are stored: FerretDB v1 answers only a filter of exactly `{"_id": …}`
from an index and reads the whole collection for any other. A subject's latest
version is therefore found by `_id` alone. Versions of a subject are contiguous
(version n+1 is only ever claimed by one who read n as the latest), so a hint
`state_heads[<subject>] = {version: n}`, raised with `$max` after version n is
stored, names a version that exists; the versions above it are probed one `_id`
at a time until one is missing. The hint is never above the truth and a stale
one only costs a probe; it decides nothing. A subject never touched (the common
case) costs two concurrent reads.
"""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from im_contracts import SellerAccessStatus, new_event_id
from im_contracts.topics import MODERATION_EVENTS

from services.common.idempotency import Decision
from services.common.mongo import Hint
from services.common.outbox import Outgoing
from services.moderation.domain import (
    BLOCKED,
    KnownState,
    ModerationCommandModel,
    ScreeningFacts,
    Subject,
    SubjectKind,
    Verdict,
    creator_blocks_seller,
    event_for,
    intent_of,
    judge,
    seller_access,
    seller_blocks_creator,
)


class ModerationStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.versions = db["state_versions"]
        self.heads = db["state_heads"]
        self.latest_hint = Hint(self.heads, "version")

    async def ensure_indexes(self) -> None:
        # subject_latest serves only the rare fallback of `_latest`; subject_command the commands' lookups.
        await self.versions.create_index([("subject", ASCENDING), ("version", DESCENDING)], name="subject_latest")
        await self.versions.create_index(
            [("subject", ASCENDING), ("command_id", ASCENDING)], unique=True, name="subject_command"
        )
        await self.versions.create_index([("seller_id", ASCENDING), ("kind", ASCENDING)], name="seller_kind")

    # --- commands ----------------------------------------------------------

    async def apply(self, command: ModerationCommandModel) -> Decision:
        """Apply a command once. Its decision: the event of a real change, or nothing."""
        intent = intent_of(command)
        key = intent.subject.key
        while True:
            # Latest first, then this command's own version: a concurrent delivery of
            # the same command that stored its version before `current` was read is
            # found here; one storing later clashes on the unique indexes below.
            # Either way every delivery of a command ends in the same decision.
            current = await self._latest(key)
            # A scan on FerretDB v1, acceptable here: commands are rare next to sends.
            applied = await self.versions.find_one({"subject": key, "command_id": command.command_id})
            if applied is not None:
                return _decision_of(command, applied)
            known = KnownState(current["state"], _from_micros(current["as_of_us"])) if current else None
            verdict = judge(intent.subject, known, intent.state, command.occurred_at)
            if verdict is Verdict.STALE:
                return Decision(outcome=f"{command.type}:{verdict}")
            event = Outgoing.of(MODERATION_EVENTS, event_for(command, new_event_id())) if verdict is Verdict.CHANGED else None
            version = (current["version"] if current else 0) + 1
            document = {
                "_id": f"{key}#{version}",
                "subject": key,
                "kind": str(intent.subject.kind),
                "seller_id": intent.subject.seller_id,
                "creator_id": intent.subject.creator_id,
                "version": version,
                "state": intent.state,
                "as_of": command.occurred_at,
                "as_of_us": _micros(command.occurred_at),  # BSON dates keep only milliseconds
                "command_id": command.command_id,
                "verdict": str(verdict),
                "event": event.to_document() if event else None,
            }
            try:
                await self.versions.insert_one(document)
            except DuplicateKeyError:
                continue  # another command took this version, or this command is stored: look again
            await self.latest_hint.raise_to(key, version)
            return _decision_of(command, document)

    # --- reads ---------------------------------------------------------------

    async def _latest(self, key: str) -> dict[str, Any] | None:
        """The subject's highest version, by `_id` reads only: the head hint with
        version 1, then (under a hint n) versions n and n+1, then each next version
        until one is missing."""
        noted, first = await asyncio.gather(self.latest_hint.get(key), self._version(key, 1))
        if noted > 1:
            latest, following = await asyncio.gather(self._version(key, noted), self._version(key, noted + 1))
            version = noted
        else:
            latest, version = first, 1
            following = await self._version(key, 2) if first is not None else None
        if latest is None:
            if noted:  # the rare path: a hint without its version (data removed by hand)
                return await self.versions.find_one({"subject": key}, sort=[("version", DESCENDING)])
            return None  # never touched: the common case
        while following is not None:
            latest, version = following, version + 1
            following = await self._version(key, version + 1)
        if version > noted:
            await self.latest_hint.raise_to(key, version)  # a crash before the note, or versions older than the hints
        return latest

    async def _version(self, key: str, version: int) -> dict[str, Any] | None:
        return await self.versions.find_one({"_id": f"{key}#{version}"})


    async def state_of(self, subject: Subject) -> str:
        latest = await self._latest(subject.key)
        return latest["state"] if latest else subject.initial_state

    async def access_of(self, seller_id: str) -> SellerAccessStatus:
        return SellerAccessStatus(await self.state_of(seller_access(seller_id)))

    async def screening_facts(self, seller_id: str, creator_id: str) -> ScreeningFacts:
        access, by_seller, by_creator = await asyncio.gather(
            self.access_of(seller_id),
            self.state_of(seller_blocks_creator(seller_id, creator_id)),
            self.state_of(creator_blocks_seller(seller_id, creator_id)),
        )
        return ScreeningFacts(
            seller_access=access,
            seller_blocked_creator=by_seller == BLOCKED,
            creator_blocked_seller=by_creator == BLOCKED,
        )

    async def blocks_of(self, seller_id: str) -> dict[SubjectKind, list[str]]:
        """Creators currently blocked, per direction, sorted by creator id. An HTTP read,
        not on a send's path: it scans the versions (on FerretDB v1) and that is fine."""
        kinds = (SubjectKind.SELLER_BLOCKS_CREATOR, SubjectKind.CREATOR_BLOCKS_SELLER)
        cursor = self.versions.find(
            {"seller_id": seller_id, "kind": {"$in": [str(k) for k in kinds]}},
            {"subject": 1, "kind": 1, "creator_id": 1, "state": 1, "version": 1},
        ).sort("version", DESCENDING)
        latest: dict[str, dict[str, Any]] = {}
        for doc in await cursor.to_list():
            latest.setdefault(doc["subject"], doc)  # highest version of each subject comes first
        blocked: dict[SubjectKind, list[str]] = {kind: [] for kind in kinds}
        for doc in latest.values():
            if doc["state"] == BLOCKED:
                blocked[SubjectKind(doc["kind"])].append(doc["creator_id"])
        return {kind: sorted(creators) for kind, creators in blocked.items()}


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _from_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _decision_of(command: ModerationCommandModel, version: dict[str, Any]) -> Decision:
    event = version.get("event")
    return Decision(
        outcome=f"{command.type}:{version['verdict']}",
        outgoing=(Outgoing.from_document(event),) if event else (),
    )
