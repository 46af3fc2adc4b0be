"""An in-memory stand-in for QuotaStore, for driving Admission in unit tests.

It keeps the one guarantee the real store relies on — an insert under an
existing key fails, atomically — and yields to the event loop before every
operation (a random number of times), so admissions run with asyncio.gather
interleave the way concurrent handlers do."""

import asyncio
import random
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from im_contracts import ChargeSource

from services.quota.domain import Allowance, Charge, Claim, Tier, Week
from services.quota.store import Party


@dataclass
class InMemoryQuotaStore:
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    gmv_by_seller: dict[str, Decimal] = field(default_factory=dict)
    followers_by_creator: dict[str, int] = field(default_factory=dict)
    connections: set[tuple[str, str]] = field(default_factory=set)
    reply_lifts: set[str] = field(default_factory=set)
    seller_messages: dict[str, str] = field(default_factory=dict)  # command_id -> conversation
    week_tiers: dict[tuple[str, str], Tier] = field(default_factory=dict)
    claims: dict[str, Claim] = field(default_factory=dict)  # slot id -> claim
    charges: dict[tuple[str, str, str], Charge] = field(default_factory=dict)  # (seller, week, creator)

    async def _interleave(self) -> None:
        for _ in range(self.rng.randrange(3)):
            await asyncio.sleep(0)

    async def gmv(self, seller_id: str) -> Decimal | None:
        await self._interleave()
        return self.gmv_by_seller.get(seller_id)

    async def followers(self, creator_id: str) -> int | None:
        await self._interleave()
        return self.followers_by_creator.get(creator_id)

    async def connect(self, seller_id: str, creator_id: str, via: str, at: datetime) -> None:
        await self._interleave()
        self.connections.add((seller_id, creator_id))

    async def is_connected(self, seller_id: str, creator_id: str) -> bool:
        await self._interleave()
        return (seller_id, creator_id) in self.connections

    async def lift_reply_cap(self, conversation_id: str, command_id: str, at: datetime) -> None:
        await self._interleave()
        self.reply_lifts.add(conversation_id)

    async def reply_lifted(self, conversation_id: str) -> bool:
        await self._interleave()
        return conversation_id in self.reply_lifts

    async def record_seller_message(self, conversation_id: str, command_id: str, at: datetime) -> None:
        await self._interleave()
        self.seller_messages.setdefault(command_id, conversation_id)

    async def count_seller_messages(self, conversation_id: str, at_most: int, excluding_command: str | None = None) -> int:
        await self._interleave()
        return min(at_most, sum(1 for cmd, conv in self.seller_messages.items() if conv == conversation_id and cmd != excluding_command))

    async def week_tier(self, seller_id: str, week_key: str) -> Tier | None:
        await self._interleave()
        return self.week_tiers.get((seller_id, week_key))

    async def freeze_week_tier(self, seller_id: str, week_key: str, tier: Tier, command_id: str) -> Tier:
        await self._interleave()
        return self.week_tiers.setdefault((seller_id, week_key), tier)

    async def claim(self, party: Party, allowance: Allowance, tier: Tier) -> Claim | None:
        await self._interleave()
        unit = 0
        while f"{party.seller_id}:{allowance.pool}:{unit}" in self.claims:
            unit += 1
        if allowance.limit is not None and unit >= allowance.limit:
            return None
        claim = Claim(f"{party.seller_id}:{allowance.pool}:{unit}", party.command_id, allowance, unit + 1, tier)
        self.claims[claim.slot_id] = claim
        return claim

    async def claim_held_by(self, command_id: str) -> Claim | None:
        await self._interleave()
        return next((c for c in self.claims.values() if c.command_id == command_id), None)

    async def release(self, claim: Claim) -> None:
        await self._interleave()
        if self.claims.get(claim.slot_id) == claim:
            del self.claims[claim.slot_id]

    async def record_charge(self, party: Party, claim: Claim, week: Week) -> Charge:
        await self._interleave()
        charge = Charge(
            party.command_id, party.seller_id, party.creator_id, week.start,
            claim.allowance.source, claim.used, claim.allowance.limit,
        )
        return self.charges.setdefault((party.seller_id, week.key, party.creator_id), charge)

    async def charge_for(self, seller_id: str, week_key: str, creator_id: str) -> Charge | None:
        await self._interleave()
        return self.charges.get((seller_id, week_key, creator_id))

    async def charge_made_by(self, command_id: str) -> Charge | None:
        await self._interleave()
        return next((c for c in self.charges.values() if c.command_id == command_id), None)

    def claims_of(self, seller_id: str, source: ChargeSource) -> list[Claim]:
        return [c for c in self.claims.values() if c.slot_id.startswith(f"{seller_id}:") and c.allowance.source is source]
