"""Inbox filters combined with folders (R16), newest-first order, and cursor
paging while new messages arrive."""

import asyncio

import pytest

from im_contracts import ArchiveConversation, StarConversation
from im_contracts.topics import INBOX_COMMANDS
from tests.harness import Suite, unique
from tests.integration.inbox_projection.support import InboxReader, converse, inbox_command, publish_profile

pytestmark = pytest.mark.integration

# creator label → (followers, main category, 30-day sales GMV); "unknown" has no profile
PROFILES = {
    "tiny": (500, "Beauty", "50"),
    "small": (5_000, "Beauty", "1500"),
    "mid": (20_000, "Home", "10000.50"),
    "big": (100_000, "Sports", "250000"),
    "huge": (1_000_000, "Home", "0"),
}


@pytest.fixture(scope="module")
async def filtered(suite: Suite) -> tuple[InboxReader, dict[str, str]]:
    """One seller, six conversations: `mid` and `small` starred, `big` archived."""
    seller = unique("s")
    creators = {label: unique(label) for label in [*PROFILES, "unknown"]}
    for label, (followers, category, gmv) in PROFILES.items():
        await publish_profile(suite, creators[label], followers=followers, category=category, gmv=gmv)
    await asyncio.gather(*(converse(suite, seller, creator, "creator") for creator in creators.values()))
    for label, kind in (("mid", StarConversation), ("small", StarConversation), ("big", ArchiveConversation)):
        await suite.publish(INBOX_COMMANDS, inbox_command(kind, seller, creators[label]))
    async with suite.http("inbox-projection") as http:
        inbox = InboxReader(http, seller)
        for label, creator in creators.items():
            await inbox.wait_row(
                creator,
                lambda r, label=label: (label == "unknown" or r["creator"]["followers"] == PROFILES[label][0])
                and r["starred"] == (label in ("mid", "small"))
                and r["archived"] == (label == "big"),
            )
        yield inbox, creators


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {"tiny", "small", "mid", "huge", "unknown"}),
        ({"min_followers": 5000}, {"small", "mid", "huge"}),
        ({"max_followers": 20000}, {"tiny", "small", "mid"}),
        ({"min_followers": 5000, "max_followers": 20000}, {"small", "mid"}),
        ({"category": "Home"}, {"mid", "huge"}),
        ({"category": ["Home", "Beauty"]}, {"tiny", "small", "mid", "huge"}),
        ({"min_sales_gmv": "1500", "max_sales_gmv": "10000.50"}, {"small", "mid"}),
        ({"max_sales_gmv": 49.99}, {"huge"}),
        ({"min_sales_gmv": "10000.51"}, set()),
        ({"folder": "archived"}, {"big"}),
        ({"folder": "archived", "min_sales_gmv": 100000}, {"big"}),
        ({"folder": "archived", "category": "Home"}, set()),
        ({"folder": "starred"}, {"small", "mid"}),
        ({"folder": "starred", "category": "Home"}, {"mid"}),
        ({"folder": "starred", "min_followers": 10000, "max_sales_gmv": "20000"}, {"mid"}),
        ({"folder": "unread", "category": "Beauty", "max_followers": 1000}, {"tiny"}),
        ({"folder": "unreplied", "category": ["Sports", "Home"], "min_followers": 1}, {"mid", "huge"}),
        ({"folder": "unread", "category": "Beauty", "min_followers": 100, "max_followers": 10000, "min_sales_gmv": 10, "max_sales_gmv": 2000}, {"tiny", "small"}),
    ],
)
async def test_filters_combine_with_every_folder(filtered: tuple[InboxReader, dict[str, str]], params: dict, expected: set[str]) -> None:
    inbox, creators = filtered
    labels = {creator: label for label, creator in creators.items()}
    assert {labels[c] for c in await inbox.creators(**params)} == expected
    assert {labels[c] for c in await inbox.creators(limit=1, **params)} == expected  # paged one by one


async def test_newest_first_with_an_opaque_cursor(suite: Suite) -> None:
    seller = unique("s")
    creators = [unique("c") for _ in range(5)]
    async with suite.http("inbox-projection") as http:
        inbox = InboxReader(http, seller)
        for creator in creators:  # one after the other: each newer than the last
            await converse(suite, seller, creator, "creator")
            await inbox.wait_seq(creator, 1)
        first = (await inbox.page(limit=2)).json()
        assert [i["creator_id"] for i in first["items"]] == [creators[4], creators[3]]
        assert await inbox.creators(limit=2) == creators[::-1]
        assert await inbox.creators() == creators[::-1]
        assert (await inbox.page(limit=5)).json()["next_cursor"] is None


async def test_paging_neither_skips_nor_repeats_rows_while_messages_arrive(suite: Suite) -> None:
    seller = unique("s")
    creators = [unique("c") for _ in range(16)]
    async with suite.http("inbox-projection") as http:
        inbox = InboxReader(http, seller)
        await asyncio.gather(*(converse(suite, seller, creator, "creator") for creator in creators))
        await asyncio.gather(*(inbox.wait_seq(creator, 1) for creator in creators))
        order = await inbox.creators()
        assert sorted(order) == sorted(creators)

        async def arrive(*touched: str) -> None:
            """New creator messages, projected before the next page is read."""
            deliveries = await asyncio.gather(*(converse(suite, seller, creator, "creator") for creator in touched))
            await asyncio.gather(*(inbox.wait_seq(c, d[-1].seq) for c, d in zip(touched, deliveries, strict=True)))

        def page_ids(page: dict) -> list[str]:
            return [item["creator_id"] for item in page["items"]]

        page = (await inbox.page(limit=4)).json()
        seen = page_ids(page)
        assert seen == order[:4]
        not_yet_reached = [order[10], order[13], order[15]]
        newcomer = unique("c")

        # Arrivals in a row already returned and in two rows not reached yet.
        first_wave = [order[0], order[10], order[13]]
        await arrive(*first_wave)
        page = (await inbox.page(limit=4, cursor=page["next_cursor"])).json()
        seen += page_ids(page)
        # Arrivals in a row of the page just read, a row not reached yet, and a new conversation.
        second_wave = [seen[-2], order[15], newcomer]
        await arrive(*second_wave)
        while cursor := page["next_cursor"]:
            page = (await inbox.page(limit=4, cursor=cursor)).json()
            seen += page_ids(page)

        # Every row is returned once at the place it held when the pass began,
        # except rows whose new activity moved them above the pass before it
        # reached them: those (and the new conversation) lead a fresh first page.
        assert seen == [c for c in order if c not in not_yet_reached]
        fresh = page_ids((await inbox.page(limit=6)).json())
        assert (set(fresh[:3]), set(fresh[3:])) == (set(second_wave), set(first_wave))
