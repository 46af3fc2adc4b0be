"""How events change inbox rows (`change_for`), applied two ways:

- `Projector`, live: each row change is read-change-write under the row's
  latch, so concurrent handlers (different topics, the creator's profile
  updates, several instances) never lose each other's changes; a new row first
  takes a slot in its creator's list, which profile updates walk (slots.py);
- `ProjectionFold`, for the rebuild: every event folded in memory, each row
  written once at the end (with its slot, `InboxStore.insert_rows`).

Both give the same rows because a row does not depend on the order its events
arrive in across topics (see domain.py). Applying an event twice changes nothing.
"""

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

from services.inbox_projection.domain import Conversation, CreatorProfile, Flag, Stamp
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

    async def _change_row(self, seller_id: str, creator_id: str, change: Change) -> None:
        conversation = conversation_id(seller_id, creator_id)
        async with self.store.latches.hold(conversation):
            current = await self.store.load(conversation)
            row = change(current or Conversation(seller_id, creator_id))
            row = row.with_profile(await self.store.profile(creator_id))
            if current is None:
                # A new row enters its creator's list (slots.py) before it exists,
                # so a profile update that lists the creator's rows after this
                # point finds it, and one that listed them before stored its
                # profile before the look below.
                await self.store.ensure_slot(creator_id, conversation)
            if row != current:
                await self.store.save(row)
            if current is None:
                # A profile stored between our read and our insert was looked for
                # by its update before this row existed: look again now that it does.
                fresh = row.with_profile(await self.store.profile(creator_id))
                if fresh != row:
                    await self.store.save(fresh)

    async def _apply_profile(self, event: CreatorProfileUpdated) -> None:
        """Keep the creator's latest profile, then copy it onto every row of the creator,
        found through the creator's slots (`_id` reads only; a slot whose row is not
        saved yet is skipped: that row looks for the profile after saving itself).
        The copy runs on every (re)delivery, so a crash half-way is finished by the redelivery."""
        incoming = CreatorProfile.from_event(event)
        async with self.store.latches.hold(f"profile:{event.creator_id}"):
            stored = await self.store.profile(event.creator_id)
            if incoming.newer_than(stored):
                await self.store.save_profile(event.creator_id, incoming)
                stored = incoming
        for conversation in await self.store.conversations_of(event.creator_id):
            async with self.store.latches.hold(conversation):
                current = await self.store.load(conversation)
                if current is not None and (row := current.with_profile(stored)) != current:
                    await self.store.save(row)


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
