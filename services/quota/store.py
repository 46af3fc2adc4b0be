"""Quota's collections: what upstream reported (GMV, profiles, connections), the
reply-cap record of each conversation, and the outreach ledger.

Correctness under concurrency rests only on unique-key inserts, the one write
FerretDB v1 applies atomically (no `$inc`, no conditional updates):

- a charge is at most one document per (seller, week, creator) (R4);
- every charge first claims a unit of its allowance by inserting the slot
  `{seller}:{week}:{n}` (or `{seller}:starter:{n}`) with n below the limit, so
  instances racing for the last units can never exceed it (R3, R7);
- the tier of a week is one document per (seller, week), written by its first
  charge; the first writer wins (R6);
- each admitted seller message of a conversation not yet replied to claims the
  lowest free reply slot `{conversation}#{n}`, n ≤ reply cap + 1 (R9).

Claims, charges and reply slots carry the command_id that made them, so a
redelivered command finds what it already holds instead of taking more (I2).

Every send is judged by `_id` reads only, because FerretDB v1 answers only a
filter of exactly `{"_id": …}` from an index and reads (and decodes) the whole
collection for any other. So a seller's send never filters on another field:

- the charge a command made is the one charge of its (seller, week, creator),
  whose `_id` it knows, when that charge carries its command_id;
- the claim a command holds is looked for (by a scan on `command_id`) only if
  its `claim_attempts` marker exists: the marker is written just before the
  command claims, so without one the command holds no claim. Only a command
  redelivered after it started claiming (a crash) pays the scan;
- a claim walk starts above `claim_heads[{seller}:{pool}]`, the highest unit
  noted as claimed (raised with `$max` after each claim). The hint is never
  above the truth; a stale one costs a collision and a step up. Only a pool
  whose top is reached (exhausted, or with released units) is scanned for a
  free unit;
- reply slots 1..cap+1 are read by `_id`, concurrently.

The HTTP read API (`claims_used`, `charges_in_week`) still counts by scanning.
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from im_contracts import ChargeSource, CreatorProfileUpdated, SellerGmvUpdated

from services.common.mongo import Hint, insert_once
from services.quota.domain import Allowance, Charge, Claim, ReplySlots, Tier, Week


@dataclass(frozen=True, slots=True)
class Party:
    seller_id: str
    creator_id: str
    command_id: str


class QuotaStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.seller_gmv = db["seller_gmv"]
        self.creator_profiles = db["creator_profiles"]
        self.connections = db["connections"]
        self.reply_lifts = db["reply_lifts"]
        self.reply_slots = db["reply_slots"]
        self.week_tiers = db["week_tiers"]
        self.claim_attempts = db["claim_attempts"]
        self.claim_heads = db["claim_heads"]
        self.claimed_unit_hint = Hint(self.claim_heads, "unit")  # per "{seller}:{pool}"
        self.claims = db["claims"]
        self.charges = db["charges"]

    async def ensure_indexes(self) -> None:
        await self.claims.create_index("command_id")  # claim_held_by's rare scan
        await self.claims.create_index([("seller_id", ASCENDING), ("pool", ASCENDING)])  # free units; the read API
        await self.charges.create_index([("seller_id", ASCENDING), ("week", ASCENDING)])  # the read API

    # --- what upstream reports (latest occurred_at wins; per-key order on one partition) ---

    async def record_gmv(self, event: SellerGmvUpdated) -> None:
        await _keep_latest(self.seller_gmv, event.seller_id, {"gmv_30d": str(event.gmv_30d)}, event.occurred_at)

    async def record_profile(self, event: CreatorProfileUpdated) -> None:
        await _keep_latest(self.creator_profiles, event.creator_id, {"followers": event.followers}, event.occurred_at)

    async def gmv(self, seller_id: str) -> Decimal | None:
        doc = await self.seller_gmv.find_one({"_id": seller_id})
        return Decimal(doc["gmv_30d"]) if doc else None

    async def followers(self, creator_id: str) -> int | None:
        doc = await self.creator_profiles.find_one({"_id": creator_id})
        return doc["followers"] if doc else None

    async def connect(self, seller_id: str, creator_id: str, via: str, at: datetime) -> None:
        """Connected for good (R5); the first way of connecting is kept."""
        await insert_once(
            self.connections,
            {"_id": _pair(seller_id, creator_id), "seller_id": seller_id, "creator_id": creator_id, "via": via, "at": at},
        )

    async def is_connected(self, seller_id: str, creator_id: str) -> bool:
        return await self.connections.find_one({"_id": _pair(seller_id, creator_id)}, {"_id": 1}) is not None

    # --- reply cap (R9): a conversation's sends are handled in order on one partition ---

    async def lift_reply_cap(self, conversation_id: str, command_id: str, at: datetime) -> None:
        await insert_once(self.reply_lifts, {"_id": conversation_id, "command_id": command_id, "at": at})

    async def reply_lifted(self, conversation_id: str) -> bool:
        return await self.reply_lifts.find_one({"_id": conversation_id}, {"_id": 1}) is not None

    async def reply_slots_held(self, conversation_id: str, slots: int) -> ReplySlots:
        """Who holds the conversation's reply slots 1..`slots`: one `_id` read each, concurrently."""
        return ReplySlots(tuple(await asyncio.gather(*(self._reply_slot_holder(conversation_id, n) for n in range(1, slots + 1)))))

    async def record_seller_message(self, conversation_id: str, command_id: str, at: datetime, seen: ReplySlots) -> None:
        """Count an admitted seller message: the lowest free reply slot, unless this
        command holds one already or all are held (`seen`: read before admitting it)."""

        async def insert(n: int) -> bool:
            doc = {"_id": _reply_slot_id(conversation_id, n), "conversation_id": conversation_id, "command_id": command_id, "at": at}
            return await insert_once(self.reply_slots, doc)

        await take_reply_slot(seen, command_id, insert, lambda n: self._reply_slot_holder(conversation_id, n))

    async def _reply_slot_holder(self, conversation_id: str, n: int) -> str | None:
        doc = await self.reply_slots.find_one({"_id": _reply_slot_id(conversation_id, n)}, {"command_id": 1})
        return doc["command_id"] if doc else None

    # --- the ledger ---------------------------------------------------------------

    async def week_tier(self, seller_id: str, week_key: str) -> Tier | None:
        doc = await self.week_tiers.find_one({"_id": f"{seller_id}:{week_key}"})
        return Tier.model_validate(doc["tier"]) if doc else None

    async def freeze_week_tier(self, seller_id: str, week_key: str, tier: Tier, command_id: str) -> Tier:
        """Freeze the week's tier unless already frozen; return the frozen one (R6)."""
        doc = {"_id": f"{seller_id}:{week_key}", "tier": tier.model_dump(mode="json"), "command_id": command_id, "at": _now()}
        if await insert_once(self.week_tiers, doc):
            return tier
        stood = await self.week_tier(seller_id, week_key)
        assert stood is not None
        return stood

    async def claim(self, party: Party, allowance: Allowance, tier: Tier) -> Claim | None:
        """Claim the lowest free unit of the allowance, or None when all are taken.

        Marks the attempt first (so `claim_held_by` knows to look), starts above the
        highest unit noted as claimed (usually the next free unit) and walks up on
        collisions; units freed by a release are found once the top is reached.
        """
        pool = f"{party.seller_id}:{allowance.pool}"
        _, unit = await asyncio.gather(
            insert_once(self.claim_attempts, {"_id": party.command_id, "seller_id": party.seller_id, "at": _now()}),
            self.claimed_unit_hint.get(pool, default=-1),
        )
        unit += 1  # one above the highest unit noted as claimed: usually the next free one
        while True:
            if allowance.limit is not None and unit >= allowance.limit:
                free = await self._lowest_free_unit(party.seller_id, allowance)  # the rare path: a scan
                if free is None:
                    return None
                unit = free
            claim = Claim(f"{party.seller_id}:{allowance.pool}:{unit}", party.command_id, allowance, unit + 1, tier)
            if await insert_once(self.claims, _claim_document(claim, party)):
                await self.claimed_unit_hint.raise_to(pool, unit)
                return claim
            unit += 1

    async def claim_held_by(self, command_id: str) -> Claim | None:
        """The claim this command holds: none unless it once started claiming."""
        if await self.claim_attempts.find_one({"_id": command_id}, {"_id": 1}) is None:
            return None  # the common case: this command never claimed
        # The rare path (a redelivery after a crash, or a claim released and retried): a scan.
        doc = await self.claims.find_one({"command_id": command_id})
        if doc is None:
            return None
        allowance = Allowance(ChargeSource(doc["source"]), doc["pool"], doc["limit"])
        return Claim(doc["_id"], command_id, allowance, doc["unit"] + 1, Tier.model_validate(doc["tier"]))

    async def release(self, claim: Claim) -> None:
        await self.claims.delete_one({"_id": claim.slot_id, "command_id": claim.command_id})

    async def claims_used(self, seller_id: str, pool: str) -> int:
        """Units of the pool held now (for the read API: a scan on FerretDB v1)."""
        return await self.claims.count_documents({"seller_id": seller_id, "pool": pool})

    async def record_charge(self, party: Party, claim: Claim, week: Week) -> Charge:
        """Record the pair's charge for the week; return the one that stands (R4)."""
        charge = Charge(
            command_id=party.command_id,
            seller_id=party.seller_id,
            creator_id=party.creator_id,
            week_start=week.start,
            source=claim.allowance.source,
            used=claim.used,
            limit=claim.allowance.limit,
        )
        doc = {
            "_id": _charge_id(party.seller_id, week.key, party.creator_id),
            "week": week.key,
            "slot_id": claim.slot_id,
            "charged_at": _now(),
            **_charge_fields(charge),
        }
        if await insert_once(self.charges, doc):
            return charge
        stood = await self.charge_for(party.seller_id, week.key, party.creator_id)
        assert stood is not None
        return stood

    async def charge_for(self, seller_id: str, week_key: str, creator_id: str) -> Charge | None:
        doc = await self.charges.find_one({"_id": _charge_id(seller_id, week_key, creator_id)})
        return _charge(doc) if doc else None

    async def charges_in_week(self, seller_id: str, week_key: str) -> int:
        """Creators charged in the week (for the read API: a scan on FerretDB v1)."""
        return await self.charges.count_documents({"seller_id": seller_id, "week": week_key})

    async def _lowest_free_unit(self, seller_id: str, allowance: Allowance) -> int | None:
        assert allowance.limit is not None
        taken = {
            doc["unit"]
            for doc in await self.claims.find({"seller_id": seller_id, "pool": allowance.pool}, {"unit": 1}).to_list()
        }
        return next((unit for unit in range(allowance.limit) if unit not in taken), None)


async def take_reply_slot(
    seen: ReplySlots,
    command_id: str,
    insert: Callable[[int], Awaitable[bool]],
    holder: Callable[[int], Awaitable[str | None]],
) -> int | None:
    """Claim the lowest free reply slot for the command; the slot it holds, or None when
    all are held. Starts at the lowest slot `seen` free (those below are held for good)
    and walks up on collisions; a collision with its own slot (a concurrent delivery
    of the same command) ends the walk, so a command never holds two."""
    if (own := seen.held_by(command_id)) is not None:
        return own
    n = seen.first_free()
    while n is not None and n <= len(seen.holders):
        if await insert(n) or await holder(n) == command_id:
            return n
        n += 1
    return None


async def _keep_latest(collection: AsyncCollection, key: str, fields: dict[str, Any], reported_at: datetime) -> None:
    current = await collection.find_one({"_id": key}, {"reported_at": 1})
    if current is not None and current["reported_at"] > reported_at:
        return  # an older report arriving late
    await collection.replace_one({"_id": key}, {**fields, "reported_at": reported_at}, upsert=True)


def _reply_slot_id(conversation_id: str, n: int) -> str:
    return f"{conversation_id}#{n}"


def _pair(seller_id: str, creator_id: str) -> str:
    return f"{seller_id}:{creator_id}"


def _charge_id(seller_id: str, week_key: str, creator_id: str) -> str:
    return f"{seller_id}:{week_key}:{creator_id}"


def _claim_document(claim: Claim, party: Party) -> dict[str, Any]:
    return {
        "_id": claim.slot_id,
        "seller_id": party.seller_id,
        "pool": claim.allowance.pool,
        "source": str(claim.allowance.source),
        "limit": claim.allowance.limit,
        "unit": claim.used - 1,
        "tier": claim.tier.model_dump(mode="json"),
        "command_id": party.command_id,
        "creator_id": party.creator_id,
        "claimed_at": _now(),
    }


def _charge_fields(charge: Charge) -> dict[str, Any]:
    return {
        "command_id": charge.command_id,
        "seller_id": charge.seller_id,
        "creator_id": charge.creator_id,
        "week_start": charge.week_start,
        "source": str(charge.source),
        "used": charge.used,
        "limit": charge.limit,
    }


def _charge(doc: dict[str, Any]) -> Charge:
    return Charge(
        command_id=doc["command_id"],
        seller_id=doc["seller_id"],
        creator_id=doc["creator_id"],
        week_start=doc["week_start"],
        source=ChargeSource(doc["source"]),
        used=doc["used"],
        limit=doc["limit"],
    )


def _now() -> datetime:
    return datetime.now(UTC)
