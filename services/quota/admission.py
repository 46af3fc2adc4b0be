"""Admission of one screened send: gathers what the store knows, applies the
domain's rules, and takes a charge when one is due. The handler stores the
resulting decision per command_id and replays it on redelivery (I2); this
module also resumes a decision that a crash interrupted, by finding the claim,
charge or reply slot the command already holds instead of taking another.

Everything a send is judged by is read by `_id` (see the store), concurrently."""

import asyncio
from dataclasses import dataclass

from im_contracts import (
    MessageRejected,
    OutreachCharged,
    RejectionStage,
    SendAdmitted,
    SendMessage,
    Sender,
    conversation_id,
    new_event_id,
    utcnow,
)
from im_contracts.topics import QUOTA_EVENTS, SEND_ADMITTED, SEND_REJECTED

from services.common.idempotency import Decision
from services.common.outbox import Outgoing
from services.quota.domain import (
    Admit,
    Charge,
    Claim,
    QuotaPolicy,
    Refuse,
    ReplySlots,
    Standing,
    Week,
    allowance,
    judge_seller_send,
    quota_exhausted,
    reply_slot_count,
)
from services.quota.store import Party, QuotaStore

CONNECTED_BY_MESSAGE = "message"


@dataclass(frozen=True, slots=True)
class Facts:
    """What a seller's send is judged by, with the records behind it."""

    standing: Standing
    charge: Charge | None
    """The (seller, week, creator) charge, whoever made it."""
    reply_slots: ReplySlots | None
    """The conversation's reply slots; None once the creator has written (R9 lifted)."""


class Admission:
    def __init__(self, store: QuotaStore, policy: QuotaPolicy) -> None:
        self.store = store
        self.policy = policy

    async def decide(self, send: SendMessage) -> Decision:
        if send.sender is Sender.CREATOR:
            return await self._admit_creator_send(send)
        return await self._judge_seller_send(send)

    async def standing(self, seller_id: str, creator_id: str, week: Week, excluding_command: str | None = None) -> Standing:
        return (await self._facts(seller_id, creator_id, week, excluding_command)).standing

    async def _facts(self, seller_id: str, creator_id: str, week: Week, excluding_command: str | None) -> Facts:
        conversation = conversation_id(seller_id, creator_id)
        connected, reply_slots, followers, gmv, week_tier, charge = await asyncio.gather(
            self.store.is_connected(seller_id, creator_id),
            self._reply_slots(conversation),
            self.store.followers(creator_id),
            self.store.gmv(seller_id),
            self.store.week_tier(seller_id, week.key),
            self.store.charge_for(seller_id, week.key, creator_id),
        )
        standing = Standing(
            connected=connected,
            reply_lifted=reply_slots is None,
            seller_messages=reply_slots.count(excluding_command) if reply_slots else 0,
            creator_followers=followers,
            tier=week_tier or self.policy.tier_for(gmv),
            tier_frozen=week_tier is not None,
            charged_this_week=charge is not None,
        )
        return Facts(standing, charge, reply_slots)

    async def _reply_slots(self, conversation: str) -> ReplySlots | None:
        """None once the cap is lifted for good: then the count no longer matters (R9)."""
        if await self.store.reply_lifted(conversation):
            return None
        return await self.store.reply_slots_held(conversation, reply_slot_count(self.policy))

    async def _admit_creator_send(self, send: SendMessage) -> Decision:
        """A creator's message is never charged; admitting it connects the creator and
        lifts the reply cap, before any later seller reply on this partition (R5, R9)."""
        await asyncio.gather(
            self.store.connect(send.seller_id, send.creator_id, CONNECTED_BY_MESSAGE, send.occurred_at),
            self.store.lift_reply_cap(_conversation(send), send.command_id, send.occurred_at),
        )
        return self._admitted(send, charge=None, connected=True)

    async def _judge_seller_send(self, send: SendMessage) -> Decision:
        party = Party(send.seller_id, send.creator_id, send.command_id)
        week = self.policy.week_of(send.occurred_at)
        claim, facts = await asyncio.gather(
            self.store.claim_held_by(send.command_id),
            self._facts(send.seller_id, send.creator_id, week, send.command_id),
        )
        if facts.charge is not None and facts.charge.command_id == send.command_id:
            return await self._admit_seller_send(send, facts, facts.charge, connected=False)  # charged before a crash
        while True:
            if claim is None:  # else claimed before a crash, under the rules passed then
                verdict = judge_seller_send(send.kind, facts.standing, self.policy)
                if isinstance(verdict, Refuse):
                    return self._refused(send, verdict)
                if isinstance(verdict, Admit):
                    return await self._admit_seller_send(send, facts, None, connected=facts.standing.connected)
                claim = await self.store.claim(party, allowance(verdict.tier, week, self.policy), verdict.tier)
                if claim is None:
                    return self._refused(send, quota_exhausted(verdict.tier, week, self.policy))
            charge = await self._charge(party, claim, week, facts.standing)
            if charge is not None:
                return await self._admit_seller_send(send, facts, charge, connected=False)
            await self.store.release(claim)
            claim = None  # judge again: under the week's frozen tier, or as already charged
            facts = await self._facts(send.seller_id, send.creator_id, week, send.command_id)

    async def _charge(self, party: Party, claim: Claim, week: Week, standing: Standing) -> Charge | None:
        """Charge with the claim, or None when the claim no longer fits: another send
        froze a different tier for the week, or charged this creator first."""
        if not (standing.tier_frozen and standing.tier == claim.tier):
            frozen = await self.store.freeze_week_tier(party.seller_id, week.key, claim.tier, party.command_id)
            if frozen != claim.tier:
                return None
        charge = await self.store.record_charge(party, claim, week)
        if charge.command_id != party.command_id:
            return None
        if (charge.source, charge.used) != (claim.allowance.source, claim.used):
            await self.store.release(claim)  # a concurrent delivery of this command charged with its own claim
        return charge

    async def _admit_seller_send(self, send: SendMessage, facts: Facts, charge: Charge | None, *, connected: bool) -> Decision:
        if facts.reply_slots is not None:
            await self.store.record_seller_message(_conversation(send), send.command_id, send.occurred_at, facts.reply_slots)
        return self._admitted(send, charge, connected)

    def _admitted(self, send: SendMessage, charge: Charge | None, connected: bool) -> Decision:
        now = utcnow()
        outgoing = []
        if charge is not None:
            charged = OutreachCharged(
                event_id=new_event_id(),
                occurred_at=now,
                command_id=send.command_id,
                seller_id=send.seller_id,
                creator_id=send.creator_id,
                week_start=self.policy.local(charge.week_start),
                source=charge.source,
                used=charge.used,
                limit=charge.limit,
            )
            outgoing.append(Outgoing.of(QUOTA_EVENTS, charged))
        admitted = SendAdmitted(
            event_id=new_event_id(),
            occurred_at=now,
            command_id=send.command_id,
            send=send,
            quota_charged=charge is not None,
            connected=connected,
        )
        outgoing.append(Outgoing.of(SEND_ADMITTED, admitted))
        return Decision(outcome="admitted:charged" if charge else "admitted", outgoing=tuple(outgoing))

    def _refused(self, send: SendMessage, refusal: Refuse) -> Decision:
        rejected = MessageRejected(
            event_id=new_event_id(),
            occurred_at=utcnow(),
            command_id=send.command_id,
            seller_id=send.seller_id,
            creator_id=send.creator_id,
            sender=send.sender,
            kind=send.kind,
            card_id=send.card_id,
            bulk_id=send.bulk_id,
            stage=RejectionStage.QUOTA,
            reason=refusal.reason,
            detail=refusal.detail,
        )
        return Decision(outcome=f"rejected:{refusal.reason}", outgoing=(Outgoing.of(SEND_REJECTED, rejected),))


def _conversation(send: SendMessage) -> str:
    return conversation_id(send.seller_id, send.creator_id)

