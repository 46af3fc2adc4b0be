"""An in-memory stand-in for QuotaStore, for driving Admission in unit tests.

Each operation is atomic on its one record, as each of the real store's is on its
one document, and yields to the event loop before it (a random number of times), so
admissions run with asyncio.gather interleave the way concurrent handlers do: a
`load` may be stale by the time its writes run."""

import asyncio
import random
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from services.quota.domain import STARTER_POOL, Allowance, Charge, Claim, Tier, Units, Week
from services.quota.store import Ledger, Party


@dataclass
class InMemoryQuotaStore:
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    gmv_by_seller: dict[str, Decimal] = field(default_factory=dict)
    followers_by_creator: dict[str, int] = field(default_factory=dict)
    connections: set[tuple[str, str]] = field(default_factory=set)
    reply_lifts: set[str] = field(default_factory=set)
    counted: dict[str, list[str]] = field(default_factory=dict)  # conversation -> seller messages counted (R9)
    week_tiers: dict[tuple[str, str], Tier] = field(default_factory=dict)
    units: dict[tuple[str, str], list[str | None]] = field(default_factory=dict)  # (seller, pool) -> holders
    charges: dict[tuple[str, str, str], Charge] = field(default_factory=dict)  # (seller, week, creator)

    async def _interleave(self) -> None:
        for _ in range(self.rng.randrange(3)):
            await asyncio.sleep(0)

    def held_units(self) -> list[tuple[str, str, int, str]]:
        """(seller, pool, unit, command) of every unit held."""
        return [(seller, pool, n, holder) for (seller, pool), holders in self.units.items()
                for n, holder in enumerate(holders, 1) if holder is not None]

    async def connect(self, seller_id: str, creator_id: str, via: str, at: datetime) -> None:
        await self._interleave()
        self.connections.add((seller_id, creator_id))

    async def lift_reply_cap(self, conversation_id: str) -> None:
        await self._interleave()
        self.reply_lifts.add(conversation_id)

    async def count_seller_message(self, conversation_id: str, command_id: str, slots: int) -> None:
        await self._interleave()
        counted = self.counted.setdefault(conversation_id, [])
        if command_id not in counted and len(counted) < slots:
            counted.append(command_id)

    async def load(self, seller_id: str, creator_id: str, week: Week) -> Ledger:
        await self._interleave()
        conversation = f"{seller_id}:{creator_id}"
        return Ledger(
            connected=(seller_id, creator_id) in self.connections,
            reply_lifted=conversation in self.reply_lifts,
            counted=list(self.counted.get(conversation, [])),
            gmv=self.gmv_by_seller.get(seller_id),
            followers=self.followers_by_creator.get(creator_id),
            week_tier=self.week_tiers.get((seller_id, week.key)),
            charge=self.charges.get((seller_id, week.key, creator_id)),
            units={pool: Units(tuple(self.units.get((seller_id, pool), ()))) for pool in (week.key, STARTER_POOL)},
        )

    async def freeze_week_tier(self, seller_id: str, week_key: str, tier: Tier, command_id: str) -> Tier:
        await self._interleave()
        return self.week_tiers.setdefault((seller_id, week_key), tier)

    async def take_unit(self, seller_id: str, allowance: Allowance, command_id: str, seen: Units) -> int | None:
        await self._interleave()
        holders = self.units.setdefault((seller_id, allowance.pool), [])
        if command_id in holders:
            return holders.index(command_id) + 1
        if None in holders:
            holders[holders.index(None)] = command_id
            return holders.index(command_id) + 1
        if allowance.limit is not None and len(holders) >= allowance.limit:
            return None
        holders.append(command_id)
        return len(holders)

    async def give_back(self, seller_id: str, pool: str, unit: int, command_id: str) -> None:
        await self._interleave()
        holders = self.units.get((seller_id, pool), [])
        if len(holders) >= unit and holders[unit - 1] == command_id:
            holders[unit - 1] = None

    async def record_charge(self, party: Party, claim: Claim, week: Week) -> Charge:
        await self._interleave()
        charge = Charge(
            party.command_id, party.seller_id, party.creator_id, week.start,
            claim.allowance.source, claim.used, claim.allowance.limit,
        )
        return self.charges.setdefault((party.seller_id, week.key, party.creator_id), charge)
