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
    StarConversation,
    utcnow,
)
from services.inbox_projection.domain import Conversation, CreatorProfile, to_document
from services.inbox_projection.projector import Projector, change_for
from services.inbox_projection.store import InboxStore
from tests.harness import Suite, unique
from tests.integration.inbox_projection.support import delivered

pytestmark = pytest.mark.integration


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


# --- each creator's list of rows (slots.py) ---------------------------------------


def profile_update(creator: str, followers: int, seconds: int = 0) -> CreatorProfileUpdated:
    return CreatorProfileUpdated(
        event_id=unique("p"), occurred_at=utcnow() + timedelta(seconds=seconds), creator_id=creator, nickname="n",
        followers=followers, main_category="Home", sales_gmv_30d=Decimal(1),
    )


@pytest.fixture
async def fresh_db(suite: Suite):
    mongo = suite.runtimes["inbox-projection"].mongo
    db = mongo[unique("slots").replace("-", "_")]
    await InboxStore(db).ensure_indexes()
    try:
        yield db
    finally:
        await mongo.drop_database(db.name)


async def followers_of_rows(db, creator: str, sellers: list[str]) -> dict[str, int | None]:
    docs = await asyncio.gather(*(db["conversations"].find_one({"_id": f"{s}:{creator}"}) for s in sellers))
    return {s: (d or {}).get("followers") for s, d in zip(sellers, docs, strict=True)}


async def test_concurrent_first_messages_to_one_creator_each_get_a_slot_and_a_profile_update_reaches_them(fresh_db) -> None:
    instances = [Projector(InboxStore(fresh_db)) for _ in range(3)]
    creator = unique("c")
    sellers = [unique("s") for _ in range(150)]  # more than two slot batches

    await asyncio.gather(*(instances[i % 3].apply(delivered(s, creator, 1, "creator")) for i, s in enumerate(sellers)))

    store = instances[0].store
    assert sorted(await store.conversations_of(creator)) == sorted(f"{s}:{creator}" for s in sellers)
    slots = await fresh_db["creator_rows"].find({}).to_list()
    assert sorted(int(d["_id"].rsplit("#", 1)[1]) for d in slots) == list(range(1, len(sellers) + 1))  # contiguous, one each
    assert await fresh_db["slotted_conversations"].count_documents({}) == len(sellers)
    head = await fresh_db["creator_row_heads"].find_one({"_id": creator})
    assert 1 <= head["n"] <= len(sellers)

    await instances[1].apply(profile_update(creator, 4321))
    assert set((await followers_of_rows(fresh_db, creator, sellers)).values()) == {4321}


async def test_profile_updates_racing_first_messages_reach_every_row(fresh_db) -> None:
    instances = [Projector(InboxStore(fresh_db)) for _ in range(2)]
    creator = unique("c")
    sellers = [unique("s") for _ in range(80)]
    profiles = [profile_update(creator, 100 + i, seconds=i) for i in range(5)]

    async def profile_stream() -> None:
        for event in profiles:
            await instances[1].apply(event)
            await asyncio.sleep(0.01)

    await asyncio.gather(*(instances[0].apply(delivered(s, creator, 1, "creator")) for s in sellers), profile_stream())
    assert set((await followers_of_rows(fresh_db, creator, sellers)).values()) == {104}


async def test_a_profile_update_reaches_only_its_creators_rows_across_many_sellers(fresh_db) -> None:
    projector = Projector(InboxStore(fresh_db))
    creator, other = unique("c"), unique("c")
    sellers = [unique("s") for _ in range(70)]
    for seller in sellers:  # one at a time: the head hint moves with every claim
        await projector.apply(delivered(seller, creator, 1, "creator"))
    await projector.apply(delivered(sellers[0], other, 1, "creator"))

    await projector.apply(profile_update(creator, 77))
    assert set((await followers_of_rows(fresh_db, creator, sellers)).values()) == {77}
    assert (await followers_of_rows(fresh_db, other, sellers[:1])) == {sellers[0]: None}
    assert await projector.store.conversations_of(other) == [f"{sellers[0]}:{other}"]
    assert await projector.store.conversations_of(unique("nobody")) == []


async def test_a_redelivered_first_message_keeps_its_one_slot(fresh_db) -> None:
    projector = Projector(InboxStore(fresh_db))
    creator, seller = unique("c"), unique("s")
    first = delivered(seller, creator, 1, "creator")
    await projector.apply(first)
    await projector.apply(first)
    await asyncio.gather(projector.apply(first), projector.apply(first))
    assert await projector.store.conversations_of(creator) == [f"{seller}:{creator}"]
    assert await fresh_db["creator_rows"].count_documents({}) == 1

    await projector.apply(profile_update(creator, 5))
    assert (await followers_of_rows(fresh_db, creator, [seller])) == {seller: 5}


async def test_a_crash_between_the_steps_of_a_new_row_leaves_no_row_without_a_slot(fresh_db) -> None:
    store = InboxStore(fresh_db)
    projector = Projector(store)
    creator = unique("c")
    claimed_only, claimed_and_marked = unique("s"), unique("s")
    # crashed after claiming the slot, before the marker: the redelivery claims another
    await store.claim_slot(creator, f"{claimed_only}:{creator}")
    # crashed after the marker, before saving the row: the redelivery claims none
    await store.claim_slot(creator, f"{claimed_and_marked}:{creator}")
    await fresh_db["slotted_conversations"].insert_one({"_id": f"{claimed_and_marked}:{creator}"})

    await projector.apply(profile_update(creator, 9))  # slots without rows are skipped
    assert await fresh_db["conversations"].count_documents({}) == 0

    await projector.apply(delivered(claimed_only, creator, 1, "creator"))
    await projector.apply(delivered(claimed_and_marked, creator, 1, "creator"))
    assert await fresh_db["creator_rows"].count_documents({}) == 3
    assert await store.conversations_of(creator) == [f"{claimed_only}:{creator}", f"{claimed_and_marked}:{creator}"]
    assert (await followers_of_rows(fresh_db, creator, [claimed_only, claimed_and_marked])) == {claimed_only: 9, claimed_and_marked: 9}

    await projector.apply(profile_update(creator, 10, seconds=1))
    assert set((await followers_of_rows(fresh_db, creator, [claimed_only, claimed_and_marked])).values()) == {10}
