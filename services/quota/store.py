"""Quota's collections: what upstream reported (GMV, profiles, connections), the
reply-cap record of each conversation, and the outreach ledger.

Correctness under concurrency rests only on unique-key inserts, the one write
FerretDB v1 applies atomically (no `$inc`, no conditional updates):

- a charge is at most one document per (seller, week, creator) (R4);
- every charge first claims a unit of its allowance by inserting the slot
  `{seller}:{week}:{n}` (or `{seller}:starter:{n}`) with n below the limit, so
  instances racing for the last units can never exceed it (R3, R7);
- the tier of a week is one document per (seller, week), written by its first
  charge; the first writer wins (R6).

Claims and charges carry the command_id that made them, so a redelivered
command finds what it already holds instead of taking more (I2).
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from im_contracts import ChargeSource, CreatorProfileUpdated, SellerGmvUpdated

from services.quota.domain import Allowance, Charge, Claim, Tier, Week


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
        self.seller_messages = db["seller_messages"]
        self.week_tiers = db["week_tiers"]
        self.claims = db["claims"]
        self.charges = db["charges"]

    async def ensure_indexes(self) -> None:
        await self.seller_messages.create_index("conversation_id")
        await self.claims.create_index("command_id")
        await self.claims.create_index([("seller_id", ASCENDING), ("pool", ASCENDING)])
        await self.charges.create_index("command_id")
        await self.charges.create_index([("seller_id", ASCENDING), ("week", ASCENDING)])

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
        await _insert_once(
            self.connections,
            {"_id": _pair(seller_id, creator_id), "seller_id": seller_id, "creator_id": creator_id, "via": via, "at": at},
        )

    async def is_connected(self, seller_id: str, creator_id: str) -> bool:
        return await self.connections.find_one({"_id": _pair(seller_id, creator_id)}, {"_id": 1}) is not None

    # --- reply cap (R9): a conversation's sends are handled in order on one partition ---

    async def lift_reply_cap(self, conversation_id: str, command_id: str, at: datetime) -> None:
        await _insert_once(self.reply_lifts, {"_id": conversation_id, "command_id": command_id, "at": at})

    async def reply_lifted(self, conversation_id: str) -> bool:
        return await self.reply_lifts.find_one({"_id": conversation_id}, {"_id": 1}) is not None

    async def record_seller_message(self, conversation_id: str, command_id: str, at: datetime) -> None:
        await _insert_once(self.seller_messages, {"_id": command_id, "conversation_id": conversation_id, "at": at})

    async def count_seller_messages(self, conversation_id: str, at_most: int, excluding_command: str | None = None) -> int:
        """Seller messages admitted in the conversation, counted up to `at_most` (the cap)."""
        query: dict[str, Any] = {"conversation_id": conversation_id}
        if excluding_command is not None:
            query["_id"] = {"$ne": excluding_command}
        return await self.seller_messages.count_documents(query, limit=at_most) if at_most else 0

    # --- the ledger ---------------------------------------------------------------

    async def week_tier(self, seller_id: str, week_key: str) -> Tier | None:
        doc = await self.week_tiers.find_one({"_id": f"{seller_id}:{week_key}"})
        return Tier.model_validate(doc["tier"]) if doc else None

    async def freeze_week_tier(self, seller_id: str, week_key: str, tier: Tier, command_id: str) -> Tier:
        """Freeze the week's tier unless already frozen; return the frozen one (R6)."""
        doc = {"_id": f"{seller_id}:{week_key}", "tier": tier.model_dump(mode="json"), "command_id": command_id, "at": _now()}
        if await _insert_once(self.week_tiers, doc):
            return tier
        stood = await self.week_tier(seller_id, week_key)
        assert stood is not None
        return stood

    async def claim(self, party: Party, allowance: Allowance, tier: Tier) -> Claim | None:
        """Claim the lowest free unit of the allowance, or None when all are taken.

        Starts at the number of claims already made (usually the next free unit) and
        walks up on collisions; units freed by a release are found once the top is reached.
        """
        unit = await self.claims_used(party.seller_id, allowance.pool)
        while True:
            if allowance.limit is not None and unit >= allowance.limit:
                free = await self._lowest_free_unit(party.seller_id, allowance)
                if free is None:
                    return None
                unit = free
            claim = Claim(f"{party.seller_id}:{allowance.pool}:{unit}", party.command_id, allowance, unit + 1, tier)
            if await _insert_once(self.claims, _claim_document(claim, party)):
                return claim
            unit += 1

    async def claim_held_by(self, command_id: str) -> Claim | None:
        doc = await self.claims.find_one({"command_id": command_id})
        if doc is None:
            return None
        allowance = Allowance(ChargeSource(doc["source"]), doc["pool"], doc["limit"])
        return Claim(doc["_id"], command_id, allowance, doc["unit"] + 1, Tier.model_validate(doc["tier"]))

    async def release(self, claim: Claim) -> None:
        await self.claims.delete_one({"_id": claim.slot_id, "command_id": claim.command_id})

    async def claims_used(self, seller_id: str, pool: str) -> int:
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
        if await _insert_once(self.charges, doc):
            return charge
        stood = await self.charge_for(party.seller_id, week.key, party.creator_id)
        assert stood is not None
        return stood

    async def charge_for(self, seller_id: str, week_key: str, creator_id: str) -> Charge | None:
        doc = await self.charges.find_one({"_id": _charge_id(seller_id, week_key, creator_id)})
        return _charge(doc) if doc else None

    async def charge_made_by(self, command_id: str) -> Charge | None:
        doc = await self.charges.find_one({"command_id": command_id})
        return _charge(doc) if doc else None

    async def charges_in_week(self, seller_id: str, week_key: str) -> int:
        return await self.charges.count_documents({"seller_id": seller_id, "week": week_key})

    async def _lowest_free_unit(self, seller_id: str, allowance: Allowance) -> int | None:
        assert allowance.limit is not None
        taken = {
            doc["unit"]
            for doc in await self.claims.find({"seller_id": seller_id, "pool": allowance.pool}, {"unit": 1}).to_list()
        }
        return next((unit for unit in range(allowance.limit) if unit not in taken), None)


async def _insert_once(collection: AsyncCollection, doc: dict[str, Any]) -> bool:
    """Insert unless the key exists; True if this call inserted it."""
    try:
        await collection.insert_one(doc)
        return True
    except DuplicateKeyError:
        return False


async def _keep_latest(collection: AsyncCollection, key: str, fields: dict[str, Any], reported_at: datetime) -> None:
    current = await collection.find_one({"_id": key}, {"reported_at": 1})
    if current is not None and current["reported_at"] > reported_at:
        return  # an older report arriving late
    await collection.replace_one({"_id": key}, {**fields, "reported_at": reported_at}, upsert=True)


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
