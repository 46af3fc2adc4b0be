"""The documented rebuild command replays the topics into a fresh database and
produces the same projection as the live service."""

import asyncio
import os
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from im_contracts import (
    ArchiveConversation,
    InboxFolder,
    CreatorBlocked,
    MarkConversationRead,
    SellerBlocked,
    SellerUnblocked,
    StarConversation,
    UnarchiveConversation,
    utcnow,
)
from im_contracts.topics import INBOX_COMMANDS, MODERATION_EVENTS
from services.inbox_projection.reads import EntryQuery
from services.inbox_projection.projector import Projector
from services.inbox_projection.query import InboxFilters
from services.inbox_projection.store import InboxStore
from tests.harness import Suite, unique
from tests.integration.inbox_projection.support import (
    LAYOUT_FIELDS,
    assert_layout_shows_rows,
    InboxReader,
    converse,
    delivered,
    eventually,
    inbox_command,
    moderation_event,
    profile_event,
    publish_profile,
    set_access,
    wait_for_status,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]


async def run_rebuild(suite: Suite, target_prefix: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.inbox_projection.rebuild",
        "--target-prefix",
        target_prefix,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'contracts'}", **suite.kafka_env("im-inbox-projection"), "MONGODB_URI": suite.mongodb_uri},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=240)
    assert process.returncode == 0, output.decode()
    return output.decode()


async def test_a_rebuild_from_the_topics_equals_the_live_projection(suite: Suite) -> None:
    seller, other_seller = unique("s"), unique("s")
    shared, archived, blocked, plain = (unique(n) for n in ("shared", "arch", "block", "plain"))
    await publish_profile(suite, shared, followers=900, category="Home", gmv="12.5", revenue_30d="3")
    await asyncio.gather(
        converse(suite, seller, shared, "creator", "seller", "creator"),
        converse(suite, other_seller, shared, "creator"),
        converse(suite, seller, archived, "creator", "seller"),
        converse(suite, seller, blocked, "creator"),
        converse(suite, seller, plain, "creator", "creator", "creator"),
    )
    for command in (
        inbox_command(StarConversation, seller, shared),
        inbox_command(MarkConversationRead, seller, shared, up_to_seq=1),
        inbox_command(ArchiveConversation, seller, archived),
        inbox_command(ArchiveConversation, seller, plain),
        inbox_command(UnarchiveConversation, seller, plain),
        inbox_command(MarkConversationRead, seller, plain),
    ):
        await suite.publish(INBOX_COMMANDS, command)
    for event in (
        moderation_event(CreatorBlocked, seller, blocked),
        moderation_event(SellerBlocked, seller, blocked),
        moderation_event(SellerUnblocked, seller, blocked),
    ):
        await suite.publish(MODERATION_EVENTS, event)
    await publish_profile(suite, blocked, followers=10, category="Sports")
    await publish_profile(suite, shared, followers=950, category="Beauty", gmv="99")
    await set_access(suite, other_seller, "shop_closed")

    live_db = suite.runtimes["inbox-projection"].db

    async def stored_row(seller_id: str, creator_id: str) -> dict | None:
        return await live_db["conversations"].find_one({"_id": f"{seller_id}:{creator_id}"})

    # Wait until the live projection applied every event above (each condition
    # holds only once the last event of its partition was applied).
    async with suite.http("inbox-projection") as http:
        inbox = InboxReader(http, seller)
        await inbox.wait_row(shared, lambda r: r["starred"] and r["unread_count"] == 1 and r["creator"]["followers"] == 950)
        await inbox.wait_row(archived, lambda r: r["archived"])
        await inbox.wait_row(plain, lambda r: r["unread_count"] == 0 and not r["archived"] and r["last_message"]["seq"] == 3)
        await inbox.wait_row(blocked, lambda r: r["blocked"] and r["creator"]["followers"] == 10)
        await eventually(lambda: stored_row(seller, blocked), lambda r: r is not None and r["blocked_by"] is not None and not r["blocked_by"]["on"])
        await eventually(lambda: stored_row(other_seller, shared), lambda r: r is not None and r["followers"] == 950)
        await wait_for_status(http, f"/v1/sellers/{other_seller}/inbox", 403)

    target_prefix = unique("rebuilt").replace("-", "_")
    output = await run_rebuild(suite, target_prefix)
    assert "rebuild:" in output and "done into" in output

    rebuilt_db = suite.runtimes["inbox-projection"].mongo[f"{target_prefix}_inbox_projection"]
    try:
        sellers = {"seller_id": {"$in": [seller, other_seller]}}
        layout = {field: 0 for field in LAYOUT_FIELDS}  # where a row's entry sits differs by construction
        live_rows = await live_db["conversations"].find(sellers, layout).sort("_id").to_list()
        rebuilt_rows = await rebuilt_db["conversations"].find(sellers, layout).sort("_id").to_list()
        assert len(live_rows) == 5
        assert rebuilt_rows == live_rows
        creators = {"_id": {"$in": [shared, blocked]}}
        assert await rebuilt_db["creator_profiles"].find(creators).sort("_id").to_list() == await live_db["creator_profiles"].find(creators).sort("_id").to_list()
        assert await rebuilt_db["seller_access"].find_one({"_id": other_seller}) == await live_db["seller_access"].find_one({"_id": other_seller})

        async def rows_by_creator(db) -> dict[str, list[str]]:  # a set's order is the writes' order
            shards = await db["creator_rows"].find({"_id": {"$regex": f"^({shared}|{blocked})#"}}).to_list()
            return {shard["_id"]: sorted(shard["rows"]) for shard in shards}

        assert await rows_by_creator(rebuilt_db) == await rows_by_creator(live_db) != {}

        # The rebuilt layout serves the same listings and counts as the live one.
        live_store, rebuilt_store = InboxStore(live_db), InboxStore(rebuilt_db)
        for seller_id in (seller, other_seller):
            assert await rebuilt_store.counts(seller_id) == await live_store.counts(seller_id)
            for folder in InboxFolder:
                query = EntryQuery(folder, InboxFilters())
                listed = [r["_id"] for r in await rebuilt_store.page(seller_id, query, 100)]
                assert listed == [r["_id"] for r in await live_store.page(seller_id, query, 100)]
        await assert_layout_shows_rows(rebuilt_db, seller)

        # After the switch, profile updates reach the rebuilt rows and new rows
        # and new activity enter the layout after them.
        rebuilt = Projector(rebuilt_store)
        late_seller = unique("s")
        await rebuilt.apply(delivered(late_seller, shared, 1, "creator"))
        await rebuilt.apply(delivered(seller, plain, 4, "creator"))
        await rebuilt.apply(profile_event(shared, followers=123456, occurred_at=utcnow() + timedelta(minutes=1)))
        for seller_id in (seller, other_seller, late_seller):
            assert (await rebuilt_db["conversations"].find_one({"_id": f"{seller_id}:{shared}"}))["followers"] == 123456
            await assert_layout_shows_rows(rebuilt_db, seller_id)
        assert [r["creator_id"] for r in await rebuilt_store.page(seller, EntryQuery(InboxFolder.MESSAGES, InboxFilters()), 1)] == [plain]
    finally:
        await suite.runtimes["inbox-projection"].mongo.drop_database(rebuilt_db.name)


async def test_the_rebuild_refuses_a_database_that_already_holds_a_projection(suite: Suite) -> None:
    live_prefix = suite.runtimes["inbox-projection"].settings.database_prefix
    await converse(suite, unique("s"), unique("c"), "creator")  # the live projection is not empty
    await eventually(lambda: suite.runtimes["inbox-projection"].db["conversations"].estimated_document_count(), lambda n: n > 0)
    with pytest.raises(AssertionError, match="already holds a projection"):
        await run_rebuild(suite, live_prefix)
