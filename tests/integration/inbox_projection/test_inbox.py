"""The seller inbox through real Kafka and the database: folders (R15), read
marks (R17), star/archive, un-archive, blocked icons (R11, R12), creator
profiles, counts, the conversation detail, and the API's errors.

Conversations open with a creator message: that connects the creator (R5), so
the seller's later replies pass the quota rules whatever they become."""

import asyncio
import pytest

from im_contracts import (
    ArchiveConversation,
    CreatorBlocked,
    CreatorUnblocked,
    MarkConversationRead,
    SellerBlocked,
    SellerUnblocked,
    StarConversation,
    UnarchiveConversation,
    UnstarConversation,
    utcnow,
)
from im_contracts.topics import INBOX_COMMANDS, MODERATION_EVENTS
from tests.harness import Suite, unique
from tests.integration.inbox_projection.support import (
    InboxReader,
    converse,
    eventually,
    inbox_command,
    moderation_event,
    publish_profile,
    set_access,
    wait_for_status,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def inbox(suite: Suite) -> InboxReader:
    async with suite.http("inbox-projection") as http:
        yield InboxReader(http, unique("s"))


async def folders_of(inbox: InboxReader) -> dict[str, set[str]]:
    return {folder: set(await inbox.creators(folder=folder)) for folder in ("messages", "unread", "unreplied", "starred", "archived")}


async def test_each_folder_holds_exactly_what_r15_says(suite: Suite, inbox: InboxReader) -> None:
    seller = inbox.seller
    replied, fresh, read, starred, archived, starred_archived = (unique(n) for n in ("replied", "fresh", "read", "star", "arch", "stararch"))
    conversations = {
        replied: ("creator", "seller"),
        fresh: ("creator",),
        read: ("creator",),
        starred: ("creator", "creator"),
        archived: ("creator", "seller"),
        starred_archived: ("creator",),
    }
    await asyncio.gather(*(converse(suite, seller, creator, *senders) for creator, senders in conversations.items()))
    await asyncio.gather(*(inbox.wait_seq(creator, len(senders)) for creator, senders in conversations.items()))

    for command in (
        inbox_command(MarkConversationRead, seller, replied),
        inbox_command(MarkConversationRead, seller, read),
        inbox_command(StarConversation, seller, starred),
        inbox_command(ArchiveConversation, seller, archived),
        inbox_command(StarConversation, seller, starred_archived),
        inbox_command(ArchiveConversation, seller, starred_archived),
    ):
        await suite.publish(INBOX_COMMANDS, command)
    await inbox.wait_row(replied, lambda r: r["unread_count"] == 0)
    await inbox.wait_row(read, lambda r: r["unread_count"] == 0)
    await inbox.wait_row(starred, lambda r: r["starred"])
    await inbox.wait_row(archived, lambda r: r["archived"])
    await inbox.wait_row(starred_archived, lambda r: r["starred"] and r["archived"])

    assert await folders_of(inbox) == {
        "messages": {replied, fresh, read, starred},
        "unread": {fresh, starred},
        "unreplied": {fresh, read, starred},
        "starred": {starred, starred_archived},
        "archived": {archived, starred_archived},
    }
    assert await inbox.counts() == {"messages": 4, "unread": 2, "unreplied": 3, "starred": 2, "archived": 2}
    row = (await inbox.conversation(starred)).json()
    assert (row["unread_count"], row["unreplied"], row["starred"], row["archived"]) == (2, True, True, False)


async def test_read_marks_count_creator_messages_after_the_mark(suite: Suite, inbox: InboxReader) -> None:
    seller, creator = inbox.seller, unique("c")
    await converse(suite, seller, creator, "creator", "creator", "creator")
    assert (await inbox.wait_seq(creator, 3))["unread_count"] == 3

    await suite.publish(INBOX_COMMANDS, inbox_command(MarkConversationRead, seller, creator, up_to_seq=2))
    await inbox.wait_row(creator, lambda r: r["unread_count"] == 1)
    assert creator in await inbox.creators(folder="unread")

    await suite.publish(INBOX_COMMANDS, inbox_command(MarkConversationRead, seller, creator))
    row = await inbox.wait_row(creator, lambda r: r["unread_count"] == 0)
    assert row["unreplied"] and creator not in await inbox.creators(folder="unread")

    await converse(suite, seller, creator, "seller")
    assert (await inbox.wait_seq(creator, 4))["unreplied"] is False
    await converse(suite, seller, creator, "creator")
    row = await inbox.wait_seq(creator, 5)
    assert (row["unread_count"], row["unreplied"]) == (1, True)
    await suite.publish(INBOX_COMMANDS, inbox_command(MarkConversationRead, seller, creator, up_to_seq=1))  # an older mark
    await suite.publish(INBOX_COMMANDS, inbox_command(StarConversation, seller, creator))
    row = await inbox.wait_row(creator, lambda r: r["starred"])
    assert row["unread_count"] == 1


async def test_star_unstar_archive_unarchive(suite: Suite, inbox: InboxReader) -> None:
    seller, creator = inbox.seller, unique("c")
    await converse(suite, seller, creator, "creator", "seller")
    await inbox.wait_seq(creator, 2)
    await suite.publish(INBOX_COMMANDS, inbox_command(MarkConversationRead, seller, creator))
    await inbox.wait_row(creator, lambda r: r["unread_count"] == 0)

    steps = [
        (StarConversation, lambda r: r["starred"], {"messages", "starred"}),
        (ArchiveConversation, lambda r: r["archived"], {"starred", "archived"}),
        (UnstarConversation, lambda r: not r["starred"], {"archived"}),
        (UnarchiveConversation, lambda r: not r["archived"], {"messages"}),
    ]
    for kind, applied, expected in steps:
        await suite.publish(INBOX_COMMANDS, inbox_command(kind, seller, creator))
        await inbox.wait_row(creator, applied)
        listed = {folder for folder, creators in (await folders_of(inbox)).items() if creator in creators}
        assert listed == expected, kind.__name__


async def test_a_new_creator_message_unarchives_and_a_seller_message_does_not(suite: Suite, inbox: InboxReader) -> None:
    seller, creator = inbox.seller, unique("c")
    await converse(suite, seller, creator, "creator")
    await inbox.wait_seq(creator, 1)
    await suite.publish(INBOX_COMMANDS, inbox_command(ArchiveConversation, seller, creator))
    await inbox.wait_row(creator, lambda r: r["archived"])

    await converse(suite, seller, creator, "seller")
    row = await inbox.wait_seq(creator, 2)
    assert row["archived"] and await inbox.creators(folder="archived") == [creator]

    await converse(suite, seller, creator, "creator")
    row = await inbox.wait_seq(creator, 3)
    assert not row["archived"] and row["unreplied"]
    assert await inbox.creators(folder="archived") == []
    assert await inbox.creators(folder="unread") == [creator]


async def test_blocked_icons_follow_moderation_events(suite: Suite, inbox: InboxReader) -> None:
    seller, creator, blocked_early = inbox.seller, unique("c"), unique("c")
    await suite.publish(MODERATION_EVENTS, moderation_event(SellerBlocked, seller, blocked_early))  # before any message
    await converse(suite, seller, creator, "creator")
    await converse(suite, seller, blocked_early, "creator")
    await inbox.wait_seq(creator, 1)
    assert (await inbox.wait_row(blocked_early, lambda r: r["blocked_by_creator"]))["blocked"] is False

    await suite.publish(MODERATION_EVENTS, moderation_event(CreatorBlocked, seller, creator))
    row = await inbox.wait_row(creator, lambda r: r["blocked"])
    assert row["blocked_by_creator"] is False
    await suite.publish(MODERATION_EVENTS, moderation_event(SellerBlocked, seller, creator))
    await inbox.wait_row(creator, lambda r: r["blocked"] and r["blocked_by_creator"])
    items = (await inbox.page()).json()["items"]
    assert {(i["creator_id"], i["blocked"], i["blocked_by_creator"]) for i in items} == {(creator, True, True), (blocked_early, False, True)}

    await suite.publish(MODERATION_EVENTS, moderation_event(CreatorUnblocked, seller, creator))
    await suite.publish(MODERATION_EVENTS, moderation_event(SellerUnblocked, seller, creator))
    await inbox.wait_row(creator, lambda r: not r["blocked"] and not r["blocked_by_creator"])


async def test_profiles_before_and_after_the_conversation_reach_every_row(suite: Suite, inbox: InboxReader) -> None:
    seller, other_seller = inbox.seller, unique("s")
    early, late = unique("c"), unique("c")
    await publish_profile(
        suite, early, followers=5000, category="Home", gmv="2500.75", revenue_30d="300.1", video_views=12345, live_unique_viewers=678, avatar_url="https://cdn.example.com/a.png"
    )
    profiles = suite.runtimes["inbox-projection"].db["creator_profiles"]
    await eventually(lambda: profiles.find_one({"_id": early}), lambda p: p is not None)

    await converse(suite, seller, early, "creator")
    await converse(suite, other_seller, early, "creator")
    await converse(suite, seller, late, "creator")
    row = await inbox.wait_seq(early, 1)
    assert row["creator"] == {
        "nickname": f"nick-{early}",
        "followers": 5000,
        "main_category": "Home",
        "sales_gmv_30d": "2500.75",
        "revenue_30d": "300.10",
        "video_views": 12345,
        "live_unique_viewers": 678,
        "avatar_url": "https://cdn.example.com/a.png",
    }
    assert row["profile_panel"] == {"followers": 5000, "revenue_30d": "300.10", "video_views": 12345, "live_unique_viewers": 678}
    assert (await inbox.wait_seq(late, 1))["creator"]["followers"] is None

    await publish_profile(suite, late, followers=42, category="Sports")
    await inbox.wait_row(late, lambda r: r["creator"]["followers"] == 42 and r["profile_panel"]["followers"] == 42)

    await publish_profile(suite, early, followers=7000, category="Beauty", gmv="10")
    await inbox.wait_row(early, lambda r: r["creator"]["followers"] == 7000)
    other = InboxReader(inbox.http, other_seller)
    await other.wait_row(early, lambda r: r["creator"]["followers"] == 7000 and r["creator"]["main_category"] == "Beauty")
    # The listing is served from the layout, which a profile copy re-places right after the
    # row's own fields change: a moment after the detail shows the new category (README, Inbox).
    assert await eventually(lambda: inbox.creators(category="Beauty"), lambda found: found == [early]) == [early]


async def test_conversation_detail_404_for_unknown_or_message_less_conversations(suite: Suite, inbox: InboxReader) -> None:
    assert (await inbox.conversation(unique("c"))).status_code == 404
    starred_only = unique("c")
    await suite.publish(INBOX_COMMANDS, inbox_command(StarConversation, inbox.seller, starred_only))
    rows = suite.runtimes["inbox-projection"].db["conversations"]
    await eventually(lambda: rows.find_one({"_id": f"{inbox.seller}:{starred_only}"}), lambda r: r is not None and r["starred"])
    response = await inbox.conversation(starred_only)
    assert response.status_code == 404 and response.json()["error"] == "NOT_FOUND"


async def test_a_revoked_seller_gets_403_on_every_inbox_endpoint(suite: Suite, inbox: InboxReader) -> None:
    seller, creator = inbox.seller, unique("c")
    await converse(suite, seller, creator, "creator")
    await inbox.wait_seq(creator, 1)
    paths = [f"/v1/sellers/{seller}/inbox", f"/v1/sellers/{seller}/inbox/counts", f"/v1/sellers/{seller}/conversations/{creator}"]

    await set_access(suite, seller, "shop_closed")
    for path in paths:
        response = await wait_for_status(inbox.http, path, 403)
        assert response.json()["error"] == "SELLER_ACCESS_REVOKED"
    await set_access(suite, seller, "active")
    for path in paths:
        await wait_for_status(inbox.http, path, 200)


@pytest.mark.parametrize(
    "params",
    [
        {"folder": "spam"},
        {"limit": 0},
        {"limit": 101},
        {"limit": "ten"},
        {"min_followers": -1},
        {"max_followers": 2**63},
        {"min_followers": 10, "max_followers": 9},
        {"min_sales_gmv": "abc"},
        {"max_sales_gmv": "NaN"},
        {"min_sales_gmv": "5", "max_sales_gmv": "4.99"},
        {"category": ""},
        {"cursor": "definitely-not-a-cursor"},
    ],
)
async def test_bad_inbox_parameters_are_422(inbox: InboxReader, params: dict) -> None:
    response = await inbox.page(**params)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "INVALID_REQUEST"


async def test_bad_ids_are_422(inbox: InboxReader) -> None:
    for path in ("/v1/sellers/bad!id/inbox", "/v1/sellers/bad!id/inbox/counts", f"/v1/sellers/{inbox.seller}/conversations/{'x' * 65}"):
        assert (await inbox.http.get(path)).status_code == 422


async def test_counts_of_a_seller_never_seen_are_zero(inbox: InboxReader) -> None:
    assert await inbox.counts() == {"messages": 0, "unread": 0, "unreplied": 0, "starred": 0, "archived": 0}
    assert (await inbox.page()).json() == {"items": [], "next_cursor": None}


async def test_mark_read_time_is_the_command_s_not_the_arrival_s(suite: Suite, inbox: InboxReader) -> None:
    """A read-all mark reads what was delivered by the time the seller marked it,
    even when the mark is applied after later messages."""
    seller, creator = inbox.seller, unique("c")
    await converse(suite, seller, creator, "creator")
    await inbox.wait_seq(creator, 1)
    earlier = utcnow()
    await converse(suite, seller, creator, "creator")
    await inbox.wait_seq(creator, 2)
    await suite.publish(INBOX_COMMANDS, MarkConversationRead(command_id=unique("ic"), occurred_at=earlier, seller_id=seller, creator_id=creator))
    await inbox.wait_row(creator, lambda r: r["unread_count"] == 1)
