"""Quota's collections: what upstream reported (GMV, profiles, connections), each
conversation's reply-cap record, and the outreach ledger. Every guarantee is one
atomic update of one document:

- an allowance (a seller's week, or its starter pack) is one document listing who
  holds its units; a unit is taken by appending while fewer than the limit are
  handed out (one conditional update), or by taking one given back, so racing
  sends never pass the limit (R3, R7), and a command redelivered after a crash
  finds the unit it holds instead of taking another (I2);
- a charge is the one document of its (seller, week, creator) (R4);
- the tier of a week is one document per (seller, week), written by its first
  charge; the first writer wins (R6);
- a conversation's record lists the first reply-cap + 1 seller messages admitted
  before the creator wrote, each command once (R9).

A send is judged by what `load` reads, one `_id` query per collection.
"""

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pymongo import ASCENDING, InsertOne, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from im_contracts import ChargeSource, CreatorProfileUpdated, SellerGmvUpdated

from services.common.mongo import all_applied, insert_new, insert_once, upsert_each
from services.quota.book import Book, Keys, Versioned, charge_id, pair_id, pool_id, week_tier_id
from services.quota.domain import STARTER_POOL, Allowance, Charge, Claim, Tier, Units, Week


@dataclass(frozen=True, slots=True)
class Party:
    seller_id: str
    creator_id: str
    command_id: str


@dataclass(frozen=True, slots=True)
class Ledger:
    """What quota holds about a (seller, creator) pair in one week."""

    connected: bool
    reply_lifted: bool
    counted: list[str]
    """Seller messages counted for the reply cap (the first reply-cap + 1)."""
    gmv: Decimal | None
    followers: int | None
    week_tier: Tier | None
    charge: Charge | None
    """The (seller, week, creator) charge, whoever made it."""
    units: Mapping[str, Units]
    """The week's and the starter pack's units, by pool."""


class QuotaStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.seller_gmv = db["seller_gmv"]
        self.creator_profiles = db["creator_profiles"]
        self.connections = db["connections"]
        self.conversations = db["conversations"]
        self.week_tiers = db["week_tiers"]
        self.allowances = db["allowances"]
        self.charges = db["charges"]

    async def ensure_indexes(self) -> None:
        await self.charges.create_index([("seller_id", ASCENDING), ("week", ASCENDING)])  # the read API

    # --- what upstream reports (latest occurred_at wins) ---------------------------

    async def record_gmv(self, event: SellerGmvUpdated) -> None:
        await _keep_latest(self.seller_gmv, event.seller_id, {"gmv_30d": str(event.gmv_30d)}, event.occurred_at)

    async def record_profile(self, event: CreatorProfileUpdated) -> None:
        await _keep_latest(self.creator_profiles, event.creator_id, {"followers": event.followers}, event.occurred_at)

    async def gmv(self, seller_id: str) -> Decimal | None:
        doc = await self.seller_gmv.find_one({"_id": seller_id})
        return Decimal(doc["gmv_30d"]) if doc else None

    async def connect(self, seller_id: str, creator_id: str, via: str, at: datetime) -> None:
        """Connected for good (R5); the first way of connecting is kept."""
        await insert_once(
            self.connections,
            {"_id": pair_id(seller_id, creator_id), "seller_id": seller_id, "creator_id": creator_id, "via": via, "at": at},
        )

    async def is_connected(self, seller_id: str, creator_id: str) -> bool:
        return await self.connections.find_one({"_id": pair_id(seller_id, creator_id)}, {"_id": 1}) is not None

    # --- reply cap (R9) ----------------------------------------------------------

    async def lift_reply_cap(self, conversation_id: str) -> None:
        await upsert_each(self.conversations, [({"_id": conversation_id}, {"$set": {"reply_lifted": True}, "$inc": {"v": 1}})])

    async def count_seller_message(self, conversation_id: str, command_id: str, slots: int) -> None:
        """Count an admitted seller message once, among the first `slots`."""
        await upsert_each(self.conversations, [(
            {"_id": conversation_id, "counted": {"$ne": command_id}},
            {"$push": {"counted": {"$each": [command_id], "$slice": slots}}, "$inc": {"v": 1}},
        )])

    # --- the ledger ----------------------------------------------------------------

    async def load(self, seller_id: str, creator_id: str, week: Week) -> Ledger:
        pools = {pool_id(seller_id, week.key): week.key, pool_id(seller_id, STARTER_POOL): STARTER_POOL}
        connected, conversation, gmv, profile, week_tier, charge, allowances = await asyncio.gather(
            self.is_connected(seller_id, creator_id),
            self.conversations.find_one({"_id": pair_id(seller_id, creator_id)}),
            self.gmv(seller_id),
            self.creator_profiles.find_one({"_id": creator_id}),
            self.week_tier(seller_id, week.key),
            self.charge_for(seller_id, week.key, creator_id),
            self.allowances.find({"_id": {"$in": list(pools)}}).to_list(),
        )
        held = {pools[doc["_id"]]: Units(tuple(doc["holders"])) for doc in allowances}
        return Ledger(
            connected=connected,
            reply_lifted=bool(conversation and conversation.get("reply_lifted")),
            counted=conversation.get("counted", []) if conversation else [],
            gmv=gmv,
            followers=profile["followers"] if profile else None,
            week_tier=week_tier,
            charge=charge,
            units={pool: held.get(pool, Units()) for pool in pools.values()},
        )

    async def load_book(self, keys: Keys) -> Book:
        """What a batch of sends is judged by: one `_id` query per collection that
        has keys to read."""
        connections, conversations, gmv, profiles, week_tiers, charges, allowances = await asyncio.gather(
            _among(self.connections, keys.pairs, {"_id": 1}),
            _among(self.conversations, keys.conversations),
            _among(self.seller_gmv, keys.sellers),
            _among(self.creator_profiles, keys.creators),
            _among(self.week_tiers, keys.week_tiers),
            _among(self.charges, keys.charges),
            _among(self.allowances, keys.pools),
        )
        return Book(
            connected={doc["_id"] for doc in connections},
            conversations={doc["_id"]: _versioned(doc, "reply_lifted", "counted") for doc in conversations},
            gmv={doc["_id"]: Decimal(doc["gmv_30d"]) for doc in gmv},
            followers={doc["_id"]: doc["followers"] for doc in profiles},
            week_tiers={doc["_id"]: Tier.model_validate(doc["tier"]) for doc in week_tiers},
            charges={doc["_id"]: _charge(doc) for doc in charges},
            allowances={doc["_id"]: _versioned(doc, "holders", "handed_out") for doc in allowances},
        )

    async def write_book(self, book: Book) -> bool:
        """Write what the batch changed, one bulk write per collection, each change
        conditional on what was loaded; False when another writer got to one of them
        first. Units are written before the tiers and charges they pay for, as one
        send at a time would, the rest of that chain left unwritten at a conflict.
        Conversations and connections go alongside the chain: each of their changes
        is the same whichever is written first, so sends judged again one at a time
        after a conflict count, lift and connect the same."""
        async def units_then_charges() -> bool:
            steps = (
                (self.allowances, _conditional(book.allowances)),
                (self.week_tiers, [InsertOne(doc) for doc in book.new_week_tiers.values()]),
                (self.charges, [InsertOne(doc) for doc in book.new_charges.values()]),
            )
            for collection, operations in steps:
                if not await all_applied(collection, operations):
                    return False
            return True

        charged, counted, _ = await asyncio.gather(
            units_then_charges(),
            all_applied(self.conversations, _conditional(book.conversations)),
            insert_new(self.connections, list(book.new_connections.values())),  # the first way of connecting is kept (R5)
        )
        return charged and counted

    async def week_tier(self, seller_id: str, week_key: str) -> Tier | None:
        doc = await self.week_tiers.find_one({"_id": week_tier_id(seller_id, week_key)})
        return Tier.model_validate(doc["tier"]) if doc else None

    async def freeze_week_tier(self, seller_id: str, week_key: str, tier: Tier, command_id: str) -> Tier:
        """Freeze the week's tier unless already frozen; return the frozen one (R6)."""
        doc = {"_id": week_tier_id(seller_id, week_key), "tier": tier.model_dump(mode="json"), "command_id": command_id, "at": _now()}
        if await insert_once(self.week_tiers, doc):
            return tier
        stood = await self.week_tier(seller_id, week_key)
        assert stood is not None
        return stood

    async def take_unit(self, seller_id: str, allowance: Allowance, command_id: str, seen: Units) -> int | None:
        """A unit of the allowance for the command, or None when all are held: one given
        back if `seen` shows one, else the next while fewer than the limit are handed out."""
        pool = pool_id(seller_id, allowance.pool)
        while True:
            free = seen.first_free()
            if free is not None:
                taken = await self.allowances.update_one(
                    {"_id": pool, f"holders.{free - 1}": None}, {"$set": {f"holders.{free - 1}": command_id}, "$inc": {"v": 1}})
                if taken.modified_count:
                    return free
            else:
                below_limit = {} if allowance.limit is None else {"handed_out": {"$lt": allowance.limit}}
                try:
                    before = await self.allowances.find_one_and_update(
                        {"_id": pool, **below_limit},
                        {"$push": {"holders": command_id}, "$inc": {"handed_out": 1, "v": 1}},
                        {"handed_out": 1},
                        upsert=True,
                        return_document=ReturnDocument.BEFORE,  # atomic with the change on every engine
                    )
                    return (before["handed_out"] if before else 0) + 1
                except DuplicateKeyError:
                    pass  # all handed out (or a racing first upsert): is one given back since?
            doc = await self.allowances.find_one({"_id": pool}, {"holders": 1})
            seen = Units(tuple(doc["holders"])) if doc else Units()
            if seen.held_by(command_id) is not None:
                return seen.held_by(command_id)  # this command's other delivery took one meanwhile
            if seen.first_free() is None and allowance.limit is not None and len(seen.holders) >= allowance.limit:
                return None

    async def give_back(self, seller_id: str, pool: str, unit: int, command_id: str) -> None:
        """Free the command's unit for the next taker."""
        slot = f"holders.{unit - 1}"
        await self.allowances.update_one(
            {"_id": pool_id(seller_id, pool), slot: command_id}, {"$set": {slot: None}, "$inc": {"v": 1}})

    async def units_used(self, seller_id: str, pool: str) -> int:
        doc = await self.allowances.find_one({"_id": pool_id(seller_id, pool)}, {"holders": 1})
        return Units(tuple(doc["holders"])).used if doc else 0

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
        doc = {"_id": charge_id(party.seller_id, week.key, party.creator_id), "week": week.key, "charged_at": _now(),
               **charge_fields(charge)}
        if await insert_once(self.charges, doc):
            return charge
        stood = await self.charge_for(party.seller_id, week.key, party.creator_id)
        assert stood is not None
        return stood

    async def charge_for(self, seller_id: str, week_key: str, creator_id: str) -> Charge | None:
        doc = await self.charges.find_one({"_id": charge_id(seller_id, week_key, creator_id)})
        return _charge(doc) if doc else None

    async def charges_in_week(self, seller_id: str, week_key: str) -> int:
        """Creators charged in the week (for the read API)."""
        return await self.charges.count_documents({"seller_id": seller_id, "week": week_key})


async def _keep_latest(collection: AsyncCollection, key: str, fields: dict[str, Any], reported_at: datetime) -> None:
    """Store a report unless a later one is stored (an older report arriving late)."""
    try:
        await collection.update_one(
            {"_id": key, "reported_at": {"$lte": reported_at}}, {"$set": {**fields, "reported_at": reported_at}}, upsert=True)
    except DuplicateKeyError:
        pass  # a later report is stored


async def _among(collection: AsyncCollection, ids: set[str], projection: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    if not ids:
        return []
    return await collection.find({"_id": {"$in": list(ids)}}, projection).to_list()


def _versioned(doc: dict[str, Any], *names: str) -> Versioned:
    return Versioned({name: doc[name] for name in names if name in doc}, doc.get("v", 0))


def _conditional(docs: dict[str, Versioned]) -> list[InsertOne | UpdateOne]:
    """The changed documents' writes: each update only while `v` is as loaded."""
    return [
        UpdateOne({"_id": key, "v": doc.loaded_v} if doc.loaded_v else {"_id": key, "v": {"$in": [0, None]}},
                  {"$set": doc.fields, "$inc": {"v": 1}})
        if doc.loaded_v is not None else InsertOne({"_id": key, **doc.fields, "v": 1})
        for key, doc in docs.items()
        if doc.changed
    ]


def charge_fields(charge: Charge) -> dict[str, Any]:
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
