"""Rows of one creator change concurrently — its conversations' messages and
commands on their partitions, its profile updates on another — possibly in
several instances. On FerretDB v1 concurrent updates of one document lose
each other's changes, so this drives the projector concurrently against the
real database and checks that no change was lost."""

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest

from im_contracts import (
    ArchiveConversation,
    CreatorBlocked,
    CreatorProfileUpdated,
    MarkConversationRead,
    MessageDelivered,
    StarConversation,
    utcnow,
)
from services.inbox_projection.domain import Conversation, CreatorProfile, to_document
from services.inbox_projection.projector import Projector, change_for
from services.inbox_projection.store import InboxStore
from tests.harness import Suite, unique

pytestmark = pytest.mark.integration


def delivered(seller: str, creator: str, seq: int, sender: str) -> MessageDelivered:
    return MessageDelivered(
        event_id=unique("e"),
        occurred_at=utcnow(),
        command_id=unique("cmd"),
        message_id=unique("m"),
        conversation_id=f"{seller}:{creator}",
        seq=seq,
        seller_id=seller,
        creator_id=creator,
        sender=sender,
        kind="text",
        text=f"message {seq}",
        entry_point="api",
        sent_at=utcnow(),
        quota_charged=False,
    )


async def test_concurrent_streams_and_instances_lose_no_row_change(suite: Suite) -> None:
    db = suite.runtimes["inbox-projection"].mongo[unique("concurrency").replace("-", "_")]
    instances = [Projector(InboxStore(db)) for _ in range(2)]  # two service instances, one database
    await instances[0].store.ensure_indexes()
    creator = unique("c")
    sellers = [unique("s") for _ in range(6)]
    start = utcnow()

    deliveries = {s: [delivered(s, creator, seq, "creator" if seq % 2 else "seller") for seq in range(1, 7)] for s in sellers}
    commands = {
        s: [
            StarConversation(command_id=unique("ic"), occurred_at=start, seller_id=s, creator_id=creator),
            MarkConversationRead(command_id=unique("ic"), occurred_at=start, seller_id=s, creator_id=creator, up_to_seq=3),
            ArchiveConversation(command_id=unique("ic"), occurred_at=start + timedelta(hours=1), seller_id=s, creator_id=creator),
            CreatorBlocked(event_id=unique("me"), occurred_at=start, command_id=unique("mc"), seller_id=s, creator_id=creator),
        ]
        for s in sellers
    }
    profiles = [
        CreatorProfileUpdated(
            event_id=unique("p"), occurred_at=start + timedelta(seconds=i), creator_id=creator, nickname=f"v{i}",
            followers=1000 + i, main_category="Home", sales_gmv_30d=Decimal(i),
        )
        for i in range(8)
    ]

    async def stream(events: list, instance: int) -> None:
        """One partition's events, in order, handled by one instance."""
        for event in events:
            await instances[instance].apply(event)

    try:
        await asyncio.gather(
            *(stream(deliveries[s], i % 2) for i, s in enumerate(sellers)),
            *(stream(commands[s], (i + 1) % 2) for i, s in enumerate(sellers)),
            stream(profiles, 0),
            stream(profiles[::-1], 1),  # a rebalance replaying the creator's partition elsewhere
        )

        latest_profile = CreatorProfile.from_event(profiles[-1])
        for seller in sellers:
            expected = Conversation(seller, creator)
            for event in [*deliveries[seller], *commands[seller]]:
                expected = change_for(event)(expected)  # type: ignore[misc]
            expected = expected.with_profile(latest_profile)
            stored = await db["conversations"].find_one({"_id": f"{seller}:{creator}"})
            assert stored == to_document(expected)
            assert (stored["last_message"]["seq"], stored["unread_count"], stored["starred"], stored["archived"], stored["blocked"], stored["followers"]) == (6, 1, True, True, True, 1007)
        assert await db["latches"].count_documents({}) == 0
    finally:
        await suite.runtimes["inbox-projection"].mongo.drop_database(db.name)
