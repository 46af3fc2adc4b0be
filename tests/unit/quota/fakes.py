"""An in-memory stand-in for QuotaStore, for driving Admission in unit tests.

It keeps the one guarantee the real store relies on — an insert under an
existing key fails, atomically — and yields to the event loop before every
operation (a random number of times), so admissions run with asyncio.gather
interleave the way concurrent handlers do. Like the real store it walks claims
up from a hint of the highest unit claimed, raised the way FerretDB v1 applies
`$max` (read, then write: a concurrent raise may be lost, so the hint can lag),
and claims reply slots with the store's own `take_reply_slot`."""

import asyncio
import random
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from im_contracts import ChargeSource

from services.quota.domain import Allowance, Charge, Claim, ReplySlots, Tier, Week
from services.quota.store import Party, take_reply_slot


@dataclass
class InMemoryQuotaStore:
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    gmv_by_seller: dict[str, Decimal] = field(default_factory=dict)
    followers_by_creator: dict[str, int] = field(default_factory=dict)
    connections: set[tuple[str, str]] = field(default_factory=set)
    reply_lifts: set[str] = field(default_factory=set)
    reply_slots: dict[tuple[str, int], str] = field(default_factory=dict)  # (conversation, n) -> command_id
    week_tiers: dict[tuple[str, str], Tier] = field(default_factory=dict)
    claim_attempts: set[str] = field(default_factory=set)  # command ids that started claiming
    claim_heads: dict[tuple[str, str], int] = field(default_factory=dict)  # (seller, pool) -> highest unit noted
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

    async def reply_slots_held(self, conversation_id: str, slots: int) -> ReplySlots:
        return ReplySlots(tuple(await asyncio.gather(*(self._reply_slot_holder(conversation_id, n) for n in range(1, slots + 1)))))

    async def record_seller_message(self, conversation_id: str, command_id: str, at: datetime, seen: ReplySlots) -> None:
        async def insert(n: int) -> bool:
            await self._interleave()
            if (conversation_id, n) in self.reply_slots:
                return False
            self.reply_slots[(conversation_id, n)] = command_id
            return True

        await take_reply_slot(seen, command_id, insert, lambda n: self._reply_slot_holder(conversation_id, n))

    async def _reply_slot_holder(self, conversation_id: str, n: int) -> str | None:
        await self._interleave()
        return self.reply_slots.get((conversation_id, n))

    async def week_tier(self, seller_id: str, week_key: str) -> Tier | None:
        await self._interleave()
        return self.week_tiers.get((seller_id, week_key))

    async def freeze_week_tier(self, seller_id: str, week_key: str, tier: Tier, command_id: str) -> Tier:
        await self._interleave()
        return self.week_tiers.setdefault((seller_id, week_key), tier)

    async def claim(self, party: Party, allowance: Allowance, tier: Tier) -> Claim | None:
        await self._interleave()
        self.claim_attempts.add(party.command_id)
        head = (party.seller_id, allowance.pool)
        unit = self.claim_heads.get(head, -1) + 1
        while True:
            if allowance.limit is not None and unit >= allowance.limit:
                free = next((u for u in range(allowance.limit) if f"{party.seller_id}:{allowance.pool}:{u}" not in self.claims), None)
                if free is None:
                    return None
                unit = free
            await self._interleave()
            claim = Claim(f"{party.seller_id}:{allowance.pool}:{unit}", party.command_id, allowance, unit + 1, tier)
            if self.claims.setdefault(claim.slot_id, claim) is claim:
                noted = self.claim_heads.get(head, -1)
                await self._interleave()  # $max on FerretDB v1: read, then write
                self.claim_heads[head] = max(noted, unit)
                return claim
            unit += 1

    async def claim_held_by(self, command_id: str) -> Claim | None:
        await self._interleave()
        if command_id not in self.claim_attempts:
            return None
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

    def claims_of(self, seller_id: str, source: ChargeSource) -> list[Claim]:
        return [c for c in self.claims.values() if c.slot_id.startswith(f"{seller_id}:") and c.allowance.source is source]
