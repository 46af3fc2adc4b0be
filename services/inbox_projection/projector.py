"""How events change inbox rows (`change_for`), applied two ways:

- `Projector`, live: each row change is read-change-write with a
  compare-and-set on the row's version, so concurrent handlers (different
  topics, the creator's profile updates, several instances) never lose each
  other's changes; then the serving layout follows the stored row;
- `ProjectionFold`, for the rebuild: every event folded in memory, each row
  written once at the end (with its layout, `InboxStore.write_fresh`).

Both give the same rows because a row does not depend on the order its events
arrive in across topics (see domain.py). Applying an event twice changes nothing.
"""

import asyncio
from collections.abc import Callable

from im_contracts import (
    ArchiveConversation,
    ContractModel,
    CreatorBlocked,
    CreatorProfileUpdated,
    CreatorUnblocked,
    MarkConversationRead,
    MessageDelivered,
    SellerBlocked,
    SellerUnblocked,
    StarConversation,
    UnarchiveConversation,
    UnstarConversation,
    conversation_id,
)

from services.inbox_projection.domain import Conversation, CreatorProfile, Flag, Stamp, from_document
from services.inbox_projection.store import InboxStore

Change = Callable[[Conversation], Conversation]


def change_for(event: ContractModel) -> Change | None:
    """How an event changes its conversation's row; None for events the inbox ignores."""
    match event:
        case MessageDelivered():
            return lambda row: row.deliver(event)
        case MarkConversationRead():
            return lambda row: row.mark_read(event.up_to_seq, event.occurred_at)
        case StarConversation() | UnstarConversation():
            flag = Flag(isinstance(event, StarConversation), Stamp.of(event.occurred_at, event.command_id))
            return lambda row: row.set_star(flag)
        case ArchiveConversation() | UnarchiveConversation():
            flag = Flag(isinstance(event, ArchiveConversation), Stamp.of(event.occurred_at, event.command_id))
            return lambda row: row.set_archive(flag)
        case CreatorBlocked() | CreatorUnblocked():
            flag = Flag(isinstance(event, CreatorBlocked), Stamp.of(event.occurred_at, event.event_id))
            return lambda row: row.set_block(flag)
        case SellerBlocked() | SellerUnblocked():
            flag = Flag(isinstance(event, SellerBlocked), Stamp.of(event.occurred_at, event.event_id))
            return lambda row: row.set_blocked_by_creator(flag)
    return None


def _unchanged(row: Conversation) -> Conversation:
    return row


def _delivered(messages: list[MessageDelivered]) -> Change:
    def deliver_all(row: Conversation) -> Conversation:
        for message in messages:
            row = row.deliver(message)
        return row

    return deliver_all


ROWS_AT_A_TIME = 4  # rows changed at once when a batch falls back to one row at a time


class Projector:
    def __init__(self, store: InboxStore) -> None:
        self.store = store

    async def apply(self, event: ContractModel) -> bool:
        """Project one event; False when the inbox has no use for it."""
        if isinstance(event, CreatorProfileUpdated):
            await self._apply_profile(event)
            return True
        change = change_for(event)
        if change is None:
            return False
        await self._change_row(event.seller_id, event.creator_id, change)  # type: ignore[attr-defined]
        return True

    async def deliver(self, conversations: dict[tuple[str, str], list[MessageDelivered]]) -> None:
        """Project messages (by seller and creator, each conversation's in their
        order) with one change per row: the rows and profiles read with one query
        each, the rows written with one bulk write, then the layout (`sync_each`).
        When another writer changed one of the rows first, they are changed one
        at a time, a few at once."""
        keys = {conversation_id(seller_id, creator_id): (seller_id, creator_id) for seller_id, creator_id in conversations}
        docs, profiles = await asyncio.gather(
            self.store.load_docs(list(keys)), self.store.profiles_of({creator_id for _, creator_id in conversations}))
        changes, trailing = [], []
        for key, (seller_id, creator_id) in keys.items():
            doc = docs.get(key)
            current = None if doc is None else from_document(doc)
            row = _delivered(conversations[seller_id, creator_id])(current or Conversation(seller_id, creator_id))
            row = row.with_profile(profiles.get(creator_id))
            if row != current:
                changes.append((doc, row))
            elif doc is not None and doc["synced"] != doc["v"]:
                trailing.append(doc)  # a crash came between the row's write and its sync
        stored = await self.store.commit_each(changes)
        if stored is None:
            slots = asyncio.Semaphore(ROWS_AT_A_TIME)

            async def one_row(seller_id: str, creator_id: str, change: Change) -> None:
                async with slots:
                    await self._change_row(seller_id, creator_id, change)

            await asyncio.gather(*(one_row(s, c, _delivered(messages)) for (s, c), messages in conversations.items()))
            return
        await self.store.sync_each(stored + trailing)
        # New rows: a profile stored after our read was copied by its update before
        # these rows existed, so look again now that they do.
        new = [row for (doc, row) in changes if doc is None]
        if new:
            latest = await self.store.profiles_of({row.creator_id for row in new})
            for row in new:
                if row.with_profile(latest.get(row.creator_id)) != row:
                    await self._change_row(row.seller_id, row.creator_id, _unchanged)

    async def _change_row(self, seller_id: str, creator_id: str, change: Change) -> None:
        """Read, change, compare-and-set on the row's version (retried when another
        writer came first), then bring the serving layout up to the stored row."""
        conversation = conversation_id(seller_id, creator_id)
        while True:
            doc = await self.store.load_doc(conversation)
            current = None if doc is None else from_document(doc)
            row = change(current or Conversation(seller_id, creator_id)).with_profile(await self.store.profile(creator_id))
            if row == current:
                assert doc is not None
                if doc["synced"] != doc["v"]:
                    await self.store.sync(doc)  # a crash came between the row's write and its sync
                return
            stored = await self.store.commit(doc, row)
            if stored is None:
                continue
            await self.store.sync(stored)
            if doc is not None:
                return
            # A new row: a profile stored after our read was copied by its update
            # before this row existed, so look again now that it does.
            change = _unchanged

    async def _apply_profile(self, event: CreatorProfileUpdated) -> None:
        """Keep the creator's latest profile, copy it onto every row of the creator
        (one update_many), then sync each row whose layout trails it (its entries,
        and its chains when a band or category changed). It runs on every
        (re)delivery, so a crash half-way is finished by the redelivery."""
        latest = await self.store.keep_latest_profile(event.creator_id, CreatorProfile.from_event(event))
        for doc in await self.store.copy_profile(event.creator_id, latest):
            if doc["synced"] != doc["v"]:
                await self.store.sync(doc)


class ProjectionFold:
    """Every event applied in memory, in the order of its partition."""

    def __init__(self) -> None:
        self._rows: dict[str, Conversation] = {}
        self.profiles: dict[str, CreatorProfile] = {}

    def apply(self, event: ContractModel) -> bool:
        if isinstance(event, CreatorProfileUpdated):
            incoming = CreatorProfile.from_event(event)
            if incoming.newer_than(self.profiles.get(event.creator_id)):
                self.profiles[event.creator_id] = incoming
            return True
        change = change_for(event)
        if change is None:
            return False
        seller_id, creator_id = event.seller_id, event.creator_id  # type: ignore[attr-defined]
        key = conversation_id(seller_id, creator_id)
        self._rows[key] = change(self._rows.get(key) or Conversation(seller_id, creator_id))
        return True

    def rows(self) -> list[Conversation]:
        """The rows, each with its creator's latest profile (profiles never create rows)."""
        return [row.with_profile(self.profiles.get(row.creator_id)) for row in self._rows.values()]
