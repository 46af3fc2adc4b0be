"""Rows of one creator change concurrently — its conversations' messages and
commands on their partitions, its profile updates on another — possibly in
several instances. This drives the projector concurrently against the real
database and checks that no change was lost, and that the serving layout
(buckets and directories) ends up showing exactly the stored rows."""

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest

from im_contracts import (
    ArchiveConversation,
    InboxFolder,
    CreatorBlocked,
    CreatorProfileUpdated,
    MarkConversationRead,
    StarConversation,
    conversation_id,
    utcnow,
)
from services.inbox_projection.domain import Conversation, CreatorProfile, from_document, to_document
from services.inbox_projection.reads import EntryQuery
from services.inbox_projection.query import InboxFilters
from services.inbox_projection.projector import Projector, change_for
from services.inbox_projection.store import InboxStore
from tests.harness import Suite, unique
from tests.integration.inbox_projection.support import LAYOUT_FIELDS, assert_layout_shows_rows, delivered

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
            assert {k: v for k, v in stored.items() if k not in LAYOUT_FIELDS} == to_document(expected)
            assert (stored["last_message"]["seq"], stored["unread_count"], stored["starred"], stored["archived"], stored["blocked"], stored["followers"]) == (6, 1, True, True, True, 1007)
        for seller in sellers:
            await assert_layout_shows_rows(db, seller)
    finally:
        await suite.runtimes["inbox-projection"].mongo.drop_database(db.name)


# --- one creator's rows across sellers: profile copies ---------------------------------


def profile_update(creator: str, followers: int, seconds: int = 0) -> CreatorProfileUpdated:
    return CreatorProfileUpdated(
        event_id=unique("p"), occurred_at=utcnow() + timedelta(seconds=seconds), creator_id=creator, nickname="n",
        followers=followers, main_category="Home", sales_gmv_30d=Decimal(1),
    )


async def followers_of_rows(db, creator: str, sellers: list[str]) -> dict[str, int | None]:
    docs = await asyncio.gather(*(db["conversations"].find_one({"_id": f"{s}:{creator}"}) for s in sellers))
    return {s: (d or {}).get("followers") for s, d in zip(sellers, docs, strict=True)}


async def test_concurrent_first_messages_to_one_creator_are_each_listed_and_a_profile_update_reaches_them(fresh_db) -> None:
    instances = [Projector(InboxStore(fresh_db)) for _ in range(3)]
    creator = unique("c")
    seller = unique("s")
    sellers = [seller, *(unique("s") for _ in range(149))]

    await asyncio.gather(*(instances[i % 3].apply(delivered(s, creator, 1, "creator")) for i, s in enumerate(sellers)))
    await instances[1].apply(profile_update(creator, 4321))
    assert set((await followers_of_rows(fresh_db, creator, sellers)).values()) == {4321}
    for s in sellers[:5]:
        await assert_layout_shows_rows(fresh_db, s)


async def test_one_seller_s_concurrent_conversations_fill_buckets_in_order(fresh_db, monkeypatch) -> None:
    monkeypatch.setattr("services.inbox_projection.layout.BUCKET_SIZE", 7)
    instances = [Projector(InboxStore(fresh_db)) for _ in range(2)]
    seller = unique("s")
    creators = [unique("c") for _ in range(60)]
    for wave in range(0, len(creators), 4):  # writers that read one head at once may overfill it a little
        await asyncio.gather(*(instances[i % 2].apply(delivered(seller, c, 1, "creator")) for i, c in enumerate(creators[wave : wave + 4])))
    await asyncio.gather(*(instances[i % 2].apply(delivered(seller, c, 2, "seller")) for i, c in enumerate(creators[::3])))
    assert await fresh_db["inbox_buckets"].count_documents({"_id": {"$regex": f"^{seller}\\|"}}) >= 60 // (7 + 3)
    await assert_layout_shows_rows(fresh_db, seller)


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
    for s in sellers[:5]:
        await assert_layout_shows_rows(fresh_db, s)


async def test_a_profile_update_reaches_only_its_creators_rows_across_many_sellers(fresh_db) -> None:
    projector = Projector(InboxStore(fresh_db))
    creator, other = unique("c"), unique("c")
    sellers = [unique("s") for _ in range(70)]
    for seller in sellers:
        await projector.apply(delivered(seller, creator, 1, "creator"))
    await projector.apply(delivered(sellers[0], other, 1, "creator"))

    await projector.apply(profile_update(creator, 77))
    assert set((await followers_of_rows(fresh_db, creator, sellers)).values()) == {77}
    assert (await followers_of_rows(fresh_db, other, sellers[:1])) == {sellers[0]: None}
    await assert_layout_shows_rows(fresh_db, sellers[0])


async def test_rows_written_before_creator_rows_existed_are_found_by_a_profile_update_after_the_backfill(fresh_db) -> None:
    projector = Projector(InboxStore(fresh_db))
    creator = unique("c")
    sellers = [unique("s") for _ in range(30)]
    for seller in sellers:
        await projector.apply(delivered(seller, creator, 1, "creator"))
    await fresh_db.drop_collection("creator_rows")  # as a database of the version before

    restarted = Projector(InboxStore(fresh_db))
    await restarted.store.ensure_indexes()
    await restarted.apply(profile_update(creator, 555))
    assert set((await followers_of_rows(fresh_db, creator, sellers)).values()) == {555}
    await restarted.store.ensure_indexes()  # once: the marker stays, nothing is added twice
    shards = await fresh_db["creator_rows"].find({"_id": {"$regex": f"^{creator}#"}}).to_list()
    assert sorted(row for shard in shards for row in shard["rows"]) == sorted(conversation_id(s, creator) for s in sellers)
    await assert_layout_shows_rows(fresh_db, sellers[0])


async def test_a_redelivered_first_message_keeps_its_one_entry(fresh_db) -> None:
    projector = Projector(InboxStore(fresh_db))
    creator, seller = unique("c"), unique("s")
    first = delivered(seller, creator, 1, "creator")
    await projector.apply(first)
    await projector.apply(first)
    await asyncio.gather(projector.apply(first), projector.apply(first))
    assert await fresh_db["conversations"].count_documents({}) == 1
    await assert_layout_shows_rows(fresh_db, seller)

    await projector.apply(profile_update(creator, 5))
    assert (await followers_of_rows(fresh_db, creator, [seller])) == {seller: 5}
    await assert_layout_shows_rows(fresh_db, seller)


async def test_a_crash_between_a_row_s_write_and_its_sync_is_repaired_by_the_redelivery(fresh_db) -> None:
    store = InboxStore(fresh_db)
    projector = Projector(store)
    creator, seller = unique("c"), unique("s")
    await projector.apply(delivered(seller, creator, 1, "creator"))
    second = delivered(seller, creator, 2, "creator")

    # the row's write of the second message, then a crash before its sync
    doc = await store.load_doc(f"{seller}:{creator}")
    assert await store.commit(doc, from_document(doc).deliver(second)) is not None
    listed = await store.page(seller, EntryQuery(InboxFolder.MESSAGES, InboxFilters()), 10)
    assert listed == []  # the entry trails the row: it is not shown at a place it no longer holds

    await projector.apply(second)  # the redelivery
    await assert_layout_shows_rows(fresh_db, seller)
    assert (await store.counts(seller))["unread"] == 1

    # a crash after a profile copy, before its rows' sync: the redelivery syncs them
    profile = profile_update(creator, 9)
    await store.copy_profile(creator, CreatorProfile.from_event(profile))
    await store.keep_latest_profile(creator, CreatorProfile.from_event(profile))
    await projector.apply(profile)
    await assert_layout_shows_rows(fresh_db, seller)
    assert (await store.page(seller, EntryQuery(InboxFolder.MESSAGES, InboxFilters(min_followers=9)), 10))[0]["followers"] == 9


async def test_batches_of_two_instances_over_one_seller_s_rows_keep_the_layout_exact(fresh_db, monkeypatch) -> None:
    """Each instance changes a fetch's rows with one bulk write per collection; where
    the other instance changed one of them first (overlapping batches, as in a
    rebalance), that batch falls back to one row at a time."""
    monkeypatch.setattr("services.inbox_projection.layout.BUCKET_SIZE", 9)
    instances = [Projector(InboxStore(fresh_db)) for _ in range(2)]
    seller = unique("s")
    creators = [unique("c") for _ in range(40)]
    for seq in range(1, 5):
        batches = [
            {(seller, c): [delivered(seller, c, seq, "creator" if (seq + i) % 2 else "seller")] for i, c in enumerate(creators) if i % 3 != part}
            for part in range(2)
        ]
        await asyncio.gather(*(instance.deliver(batch) for instance, batch in zip(instances, batches)),
                             instances[0].apply(profile_update(creators[seq], 10 ** seq, seconds=seq)))
    await assert_layout_shows_rows(fresh_db, seller)
    rows = {r["creator_id"]: r for r in await fresh_db["conversations"].find({"seller_id": seller}).to_list()}
    assert {c: rows[c]["last_message"]["seq"] for c in creators} == dict.fromkeys(creators, 4)


async def test_a_batch_redelivered_after_its_rows_were_written_completes_their_layout(fresh_db) -> None:
    store = InboxStore(fresh_db)
    seller = unique("s")
    batch = {(seller, c): [delivered(seller, c, 1, "creator")] for c in (unique("c") for _ in range(5))}
    # The rows written, then a crash before their layout.
    assert await store.commit_each([(None, Conversation(s, c).deliver(m[0])) for (s, c), m in batch.items()]) is not None
    await Projector(store).deliver(batch)
    await assert_layout_shows_rows(fresh_db, seller)


async def test_an_instance_s_kept_views_show_what_another_instance_changed_since(fresh_db, monkeypatch) -> None:
    """A reading instance keeps buckets and directories between pages (reads.py);
    each change another instance makes since shows on its next pages and counts."""
    monkeypatch.setattr("services.inbox_projection.layout.BUCKET_SIZE", 4)
    reader, writer = InboxStore(fresh_db), Projector(InboxStore(fresh_db))
    seller = unique("s")
    creators = [unique("c") for _ in range(10)]
    await writer.deliver({(seller, c): [delivered(seller, c, 1, "creator")] for c in creators})
    await assert_layout_shows_rows(fresh_db, seller, reader)
    assert reader.bucket_views.held and reader.directory_views.held
    for seq, moved in ((2, creators[:3]), (3, creators[5:7])):
        await writer.deliver({(seller, c): [delivered(seller, c, seq, "seller")] for c in moved})
        await writer.apply(profile_update(creators[8], 10 ** seq, seconds=seq))
        await assert_layout_shows_rows(fresh_db, seller, reader)
