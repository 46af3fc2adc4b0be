"""Admission of screened sends.

A batch is admitted in one pass (`decide_each`): load what quota holds about
every pair of the batch into a Book (what this consumer owns from memory,
services.quota.owned; the rest with one `_id` query per collection), judge each
send in order with the domain's rules against the Book, which each verdict
changes (a unit of the allowance, the week's tier, the charge, the reply count,
a connection), and write the Book back (one conditional bulk write per
collection). The handler stores the decisions per command_id and replays them on
redelivery (I2). im.send.screened is keyed by seller, so one consumer owns a
seller's allowance, tier and conversations and the writes meet no one else;
should another writer have changed a document since it was loaded (a rebalance
overlapping the old owner), the batch is judged again one send at a time
(`decide`), against the store, each claim its own atomic update. A command
redelivered after a crash finds the charge or the unit it already holds
instead of taking another, on either path."""

import asyncio

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
    STARTER_POOL,
    Charge,
    ChargeFirst,
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
from services.quota.book import Book, Keys, charge_id, keys_of, pair_id, week_tier_id
from services.quota.owned import Owned
from services.quota.store import Ledger, Party, QuotaStore, charge_fields

CONNECTED_BY_MESSAGE = "message"
DEFAULT_OWNED_ENTRIES = 50_000


class Admission:
    def __init__(self, store: QuotaStore, policy: QuotaPolicy, owned: Owned | None = None) -> None:
        self.store = store
        self.policy = policy
        self.owned = owned or Owned(DEFAULT_OWNED_ENTRIES)

    def _keys(self, sends: list[SendMessage]) -> Keys:
        return keys_of([(s.seller_id, s.creator_id, self.policy.week_of(s.occurred_at)) for s in sends])

    async def load_book(self, sends: list[SendMessage]) -> Book:
        """What quota holds about every pair of these sends: what this consumer owns
        from memory, the rest with one query per collection."""
        keys = self._keys(sends)
        return self.owned.lend(await self.store.load_book(self.owned.unknown(keys)), keys)

    async def decide_each(self, sends: list[SendMessage], book: Book) -> list[Decision]:
        """The sends judged in order against `book` (loaded for them, or for more),
        which is then written back."""
        try:
            decisions = [self._judge_in(book, send, self.policy.week_of(send.occurred_at)) for send in sends]
            written = await self.store.write_book(book)
        except BaseException:  # some of the book may be written: what is held may be stale
            self.owned.forget()
            raise
        if written:
            self.owned.keep(book)
            return decisions
        self.owned.forget()  # another writer got there first
        return [await self.decide(send) for send in sends]

    def _judge_in(self, book: Book, send: SendMessage, week: Week) -> Decision:
        """One send judged against the batch's Book, which the verdict changes."""
        seller_id, creator_id, command_id = send.seller_id, send.creator_id, send.command_id
        slots = reply_slot_count(self.policy)
        if send.sender is Sender.CREATOR:  # never charged; connects and lifts the reply cap (R5, R9)
            book.connect(seller_id, creator_id, CONNECTED_BY_MESSAGE, send.occurred_at)
            book.lift_reply_cap(seller_id, creator_id)
            return self._admitted(send, charge=None, connected=True)
        ledger = self._ledger_in(book, seller_id, creator_id, week)
        if ledger.charge is not None and ledger.charge.command_id == command_id:  # charged before a crash
            charge, connected = ledger.charge, False
        else:
            standing = self._standing(ledger, excluding_command=command_id)
            verdict = judge_seller_send(send.kind, standing, self.policy)
            needed = allowance(verdict.tier, week, self.policy) if isinstance(verdict, ChargeFirst) else None
            for pool, units in ledger.units.items():  # a unit held from before a crash that this verdict does not use
                if (unit := units.held_by(command_id)) is not None and (needed is None or pool != needed.pool):
                    book.give_back(seller_id, pool, unit, command_id)
            if isinstance(verdict, Refuse):
                return self._refused(send, verdict)
            charge, connected = None, standing.connected
            if needed is not None:
                unit = ledger.units[needed.pool].held_by(command_id) or book.take_unit(seller_id, needed, command_id)
                if unit is None:
                    return self._refused(send, quota_exhausted(verdict.tier, week, self.policy))
                if not standing.tier_frozen:
                    book.freeze_week_tier(seller_id, week.key, verdict.tier, command_id, utcnow())
                charge = Charge(command_id=command_id, seller_id=seller_id, creator_id=creator_id, week_start=week.start,
                                source=needed.source, used=unit, limit=needed.limit)
                book.record_charge(charge, week.key, utcnow(), charge_fields(charge))
                connected = False
        if not ledger.reply_lifted:
            book.count_seller_message(seller_id, creator_id, command_id, slots)
        return self._admitted(send, charge, connected)

    def _ledger_in(self, book: Book, seller_id: str, creator_id: str, week: Week) -> Ledger:
        conversation = book.conversation(seller_id, creator_id).fields
        return Ledger(
            connected=pair_id(seller_id, creator_id) in book.connected,
            reply_lifted=bool(conversation.get("reply_lifted")),
            counted=list(conversation.get("counted", [])),
            gmv=book.gmv.get(seller_id),
            followers=book.followers.get(creator_id),
            week_tier=book.week_tiers.get(week_tier_id(seller_id, week.key)),
            charge=book.charges.get(charge_id(seller_id, week.key, creator_id)),
            units={pool: book.units(seller_id, pool) for pool in (week.key, STARTER_POOL)},
        )

    async def decide(self, send: SendMessage) -> Decision:
        if send.sender is Sender.CREATOR:
            return await self._admit_creator_send(send)
        return await self._judge_seller_send(send)

    async def standing(self, seller_id: str, creator_id: str, week: Week) -> Standing:
        return self._standing(await self.store.load(seller_id, creator_id, week), excluding_command=None)

    def _standing(self, ledger: Ledger, excluding_command: str | None) -> Standing:
        return Standing(
            connected=ledger.connected,
            reply_lifted=ledger.reply_lifted,
            seller_messages=0 if ledger.reply_lifted else self._reply_slots(ledger).count(excluding_command),
            creator_followers=ledger.followers,
            tier=ledger.week_tier or self.policy.tier_for(ledger.gmv),
            tier_frozen=ledger.week_tier is not None,
            charged_this_week=ledger.charge is not None,
        )

    def _reply_slots(self, ledger: Ledger) -> ReplySlots:
        return ReplySlots.of(ledger.counted, reply_slot_count(self.policy))

    async def _admit_creator_send(self, send: SendMessage) -> Decision:
        """A creator's message is never charged; admitting it connects the creator and
        lifts the reply cap, before any later seller reply on this partition (R5, R9)."""
        await asyncio.gather(
            self.store.connect(send.seller_id, send.creator_id, CONNECTED_BY_MESSAGE, send.occurred_at),
            self.store.lift_reply_cap(_conversation(send)),
        )
        return self._admitted(send, charge=None, connected=True)

    async def _judge_seller_send(self, send: SendMessage) -> Decision:
        party = Party(send.seller_id, send.creator_id, send.command_id)
        week = self.policy.week_of(send.occurred_at)
        while True:
            ledger = await self.store.load(send.seller_id, send.creator_id, week)
            if ledger.charge is not None and ledger.charge.command_id == send.command_id:
                return await self._admit_seller_send(send, ledger, ledger.charge, connected=False)  # charged before a crash
            standing = self._standing(ledger, excluding_command=send.command_id)
            verdict = judge_seller_send(send.kind, standing, self.policy)
            needed = allowance(verdict.tier, week, self.policy) if isinstance(verdict, ChargeFirst) else None
            for pool, units in ledger.units.items():  # a unit held from before a crash that this verdict does not use
                if (unit := units.held_by(send.command_id)) is not None and (needed is None or pool != needed.pool):
                    await self.store.give_back(send.seller_id, pool, unit, send.command_id)
            if isinstance(verdict, Refuse):
                return self._refused(send, verdict)
            if needed is None:
                return await self._admit_seller_send(send, ledger, None, connected=standing.connected)
            units = ledger.units[needed.pool]
            unit = units.held_by(send.command_id) or await self.store.take_unit(send.seller_id, needed, send.command_id, units)
            if unit is None:
                return self._refused(send, quota_exhausted(verdict.tier, week, self.policy))
            charge = await self._charge(party, Claim(send.command_id, needed, unit, verdict.tier), week, standing)
            if charge is not None:
                return await self._admit_seller_send(send, ledger, charge, connected=False)
            # lost a race: judge again on what the store holds now

    async def _charge(self, party: Party, claim: Claim, week: Week, standing: Standing) -> Charge | None:
        """Charge with the claimed unit, or give it back and return None when it no longer
        fits: another send froze a different tier for the week, or charged this creator first."""
        if not (standing.tier_frozen and standing.tier == claim.tier):
            frozen = await self.store.freeze_week_tier(party.seller_id, week.key, claim.tier, party.command_id)
            if frozen != claim.tier:
                await self._give_back(party, claim)
                return None
        charge = await self.store.record_charge(party, claim, week)
        if (charge.command_id, charge.source, charge.used) != (party.command_id, claim.allowance.source, claim.used):
            await self._give_back(party, claim)  # another send's charge, or this command's other delivery's
        return charge if charge.command_id == party.command_id else None

    async def _give_back(self, party: Party, claim: Claim) -> None:
        await self.store.give_back(party.seller_id, claim.allowance.pool, claim.used, party.command_id)

    async def _admit_seller_send(self, send: SendMessage, ledger: Ledger, charge: Charge | None, *, connected: bool) -> Decision:
        if not ledger.reply_lifted:
            await self.store.count_seller_message(_conversation(send), send.command_id, reply_slot_count(self.policy))
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

