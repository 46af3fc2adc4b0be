"""GET /v1/sellers/{seller_id}/quota and
GET /v1/sellers/{seller_id}/creators/{creator_id}/outreach (DESIGN §5).

Reads are not commands: they judge "now" by the wall clock, through the
`wall_clock` dependency that tests override."""

import asyncio
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from im_contracts import MessageKind, Money, ReasonCode, utcnow

from services.common.auth import SellerScope
from services.common.http import PartyId
from services.common.runtime import ServiceRuntime
from services.quota.admission import Admission
from services.quota.domain import STARTER_POOL, ChargeFirst, Refuse, judge_seller_send, remaining_allowance


def wall_clock() -> datetime:
    return utcnow()


Now = Annotated[datetime, Depends(wall_clock)]


class QuotaStatus(BaseModel):
    seller_id: str
    tier: str
    gmv_30d: Money | None
    week_start: datetime
    resets_at: datetime
    weekly_limit: int | None
    """New creators a week; null = unlimited (0 for a tier on the starter pack)."""
    used: int
    """New creators charged this week."""
    remaining: int | None
    """New creators it may still reach this week (from the starter pack on its tier); null = unlimited."""
    starter_pack_remaining: int
    max_creator_followers: int | None
    """null = no cap."""


class OutreachStatus(BaseModel):
    seller_id: str
    creator_id: str
    connected: bool
    charged_this_week: bool
    seller_messages_without_reply: int
    max_without_reply: int
    can_send: bool
    blocked_reason: ReasonCode | None
    """The quota rule that would refuse a seller message now, if any."""


def router(runtime: ServiceRuntime, admission: Admission) -> APIRouter:
    api = APIRouter(prefix="/v1")
    store, policy = admission.store, admission.policy

    @api.get("/sellers/{seller_id}/quota", dependencies=[SellerScope])
    async def quota(seller_id: PartyId, now: Now) -> QuotaStatus:
        await runtime.access.require_active(seller_id)
        week = policy.week_of(now)
        gmv, week_tier, used, weekly_used, starter_used = await asyncio.gather(
            store.gmv(seller_id),
            store.week_tier(seller_id, week.key),
            store.charges_in_week(seller_id, week.key),
            store.units_used(seller_id, week.key),
            store.units_used(seller_id, STARTER_POOL),
        )
        tier = week_tier or policy.tier_for(gmv)
        return QuotaStatus(
            seller_id=seller_id,
            tier=tier.name,
            gmv_30d=gmv,
            week_start=policy.local(week.start),
            resets_at=policy.local(week.end),
            weekly_limit=tier.weekly_limit,
            used=used,
            remaining=remaining_allowance(tier, policy, weekly_used=weekly_used, starter_used=starter_used),
            starter_pack_remaining=max(0, policy.starter_pack_size - starter_used),
            max_creator_followers=tier.max_creator_followers,
        )

    @api.get("/sellers/{seller_id}/creators/{creator_id}/outreach", dependencies=[SellerScope])
    async def outreach(seller_id: PartyId, creator_id: PartyId, now: Now) -> OutreachStatus:
        await runtime.access.require_active(seller_id)
        week = policy.week_of(now)
        standing = await admission.standing(seller_id, creator_id, week)
        verdict = judge_seller_send(MessageKind.TEXT, standing, policy)
        blocked_reason = verdict.reason if isinstance(verdict, Refuse) else None
        if isinstance(verdict, ChargeFirst):
            weekly_used, starter_used = await asyncio.gather(
                store.units_used(seller_id, week.key), store.units_used(seller_id, STARTER_POOL)
            )
            if remaining_allowance(verdict.tier, policy, weekly_used=weekly_used, starter_used=starter_used) == 0:
                blocked_reason = ReasonCode.QUOTA_EXHAUSTED
        return OutreachStatus(
            seller_id=seller_id,
            creator_id=creator_id,
            connected=standing.connected,
            charged_this_week=standing.charged_this_week,
            seller_messages_without_reply=standing.seller_messages_without_reply,
            max_without_reply=policy.reply_cap,
            can_send=blocked_reason is None,
            blocked_reason=blocked_reason,
        )

    return api
