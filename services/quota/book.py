"""What quota holds about one batch of sends, in memory: loaded with one `_id`
query per collection, changed by the batch's decisions in order (so a send sees
the units, charges, connections and reply counts of the sends before it), and
written back with one bulk write per collection, each change conditional on
the document being as it was loaded (`v`, bumped by every write of it, or its
absence). No I/O here: services.quota.store loads and writes a Book."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from services.quota.domain import STARTER_POOL, Allowance, Charge, Tier, Units, Week


def pair_id(seller_id: str, creator_id: str) -> str:
    return f"{seller_id}:{creator_id}"


def pool_id(seller_id: str, pool: str) -> str:
    return f"{seller_id}:{pool}"


def charge_id(seller_id: str, week_key: str, creator_id: str) -> str:
    return f"{seller_id}:{week_key}:{creator_id}"


def week_tier_id(seller_id: str, week_key: str) -> str:
    return f"{seller_id}:{week_key}"


@dataclass(slots=True)
class Versioned:
    """A document the batch may change: its fields now, and the `v` it was loaded with
    (0 for a document written before versions; None: it was absent, so it is inserted)."""

    fields: dict[str, Any]
    loaded_v: int | None
    changed: bool = False


@dataclass(frozen=True, slots=True)
class Keys:
    """The `_id`s a batch reads, per collection."""

    pairs: set[str]
    """(seller, creator) pairs, for their connections."""
    conversations: set[str]
    """The same pairs, for their reply-cap records (held in memory by their owner)."""
    sellers: set[str]
    creators: set[str]
    week_tiers: set[str]
    charges: set[str]
    pools: set[str]


def keys_of(sends: list[tuple[str, str, Week]]) -> Keys:
    """(seller, creator, week) of each send."""
    pairs = {pair_id(s, c) for s, c, _ in sends}
    return Keys(
        pairs=pairs,
        conversations=pairs,
        sellers={s for s, _, _ in sends},
        creators={c for _, c, _ in sends},
        week_tiers={week_tier_id(s, w.key) for s, _, w in sends},
        charges={charge_id(s, w.key, c) for s, c, w in sends},
        pools={pool_id(s, p) for s, _, w in sends for p in (w.key, STARTER_POOL)},
    )


@dataclass(slots=True)
class Book:
    connected: set[str]
    conversations: dict[str, Versioned]
    gmv: dict[str, Decimal]
    followers: dict[str, int]
    week_tiers: dict[str, Tier]
    charges: dict[str, Charge]
    allowances: dict[str, Versioned]
    new_connections: dict[str, dict[str, Any]] = field(default_factory=dict)
    new_week_tiers: dict[str, dict[str, Any]] = field(default_factory=dict)
    new_charges: dict[str, dict[str, Any]] = field(default_factory=dict)

    # --- reads ---------------------------------------------------------------

    def conversation(self, seller_id: str, creator_id: str) -> Versioned:
        key = pair_id(seller_id, creator_id)
        if key not in self.conversations:
            self.conversations[key] = Versioned({}, None)
        return self.conversations[key]

    def units(self, seller_id: str, pool: str) -> Units:
        doc = self.allowances.get(pool_id(seller_id, pool))
        return Units(tuple(doc.fields.get("holders", ()))) if doc else Units()

    # --- changes -------------------------------------------------------------

    def connect(self, seller_id: str, creator_id: str, via: str, at: datetime) -> None:
        key = pair_id(seller_id, creator_id)
        if key not in self.connected:
            self.connected.add(key)
            self.new_connections[key] = {"_id": key, "seller_id": seller_id, "creator_id": creator_id, "via": via, "at": at}

    def lift_reply_cap(self, seller_id: str, creator_id: str) -> None:
        doc = self.conversation(seller_id, creator_id)
        if not doc.fields.get("reply_lifted"):
            doc.fields["reply_lifted"] = True
            doc.changed = True

    def count_seller_message(self, seller_id: str, creator_id: str, command_id: str, slots: int) -> None:
        doc = self.conversation(seller_id, creator_id)
        counted = doc.fields.setdefault("counted", [])
        if command_id not in counted and len(counted) < slots:
            counted.append(command_id)
            doc.changed = True

    def take_unit(self, seller_id: str, allowance: Allowance, command_id: str) -> int | None:
        """A unit of the allowance: the first one given back, else the next while
        fewer than the limit are handed out; None when all are held."""
        key = pool_id(seller_id, allowance.pool)
        doc = self.allowances.setdefault(key, Versioned({"holders": [], "handed_out": 0}, None))
        holders = doc.fields.setdefault("holders", [])
        free = next((n for n, holder in enumerate(holders) if holder is None), None)
        if free is not None:
            holders[free] = command_id
            unit = free + 1
        elif allowance.limit is None or doc.fields.get("handed_out", len(holders)) < allowance.limit:
            holders.append(command_id)
            doc.fields["handed_out"] = len(holders)
            unit = len(holders)
        else:
            return None
        doc.changed = True
        return unit

    def give_back(self, seller_id: str, pool: str, unit: int, command_id: str) -> None:
        doc = self.allowances.get(pool_id(seller_id, pool))
        if doc is not None and doc.fields["holders"][unit - 1] == command_id:
            doc.fields["holders"][unit - 1] = None
            doc.changed = True

    def freeze_week_tier(self, seller_id: str, week_key: str, tier: Tier, command_id: str, at: datetime) -> None:
        key = week_tier_id(seller_id, week_key)
        self.week_tiers[key] = tier
        self.new_week_tiers[key] = {"_id": key, "tier": tier.model_dump(mode="json"), "command_id": command_id, "at": at}

    def record_charge(self, charge: Charge, week_key: str, at: datetime, fields: dict[str, Any]) -> None:
        key = charge_id(charge.seller_id, week_key, charge.creator_id)
        self.charges[key] = charge
        self.new_charges[key] = {"_id": key, "week": week_key, "charged_at": at, **fields}
