"""Inbox filters combined with folders (R16), newest-first order, and cursor
paging while new messages arrive (also through a 10,000-conversation inbox)."""

import asyncio
import random
from decimal import Decimal

import pytest

from bench.inbox_rows import inbox_row
from im_contracts import ArchiveConversation, InboxFolder, StarConversation, utcnow
from im_contracts.topics import INBOX_COMMANDS
from services.inbox_projection.api import inbox_page
from services.inbox_projection.reads import EntryQuery
from services.inbox_projection.projector import Projector
from services.inbox_projection.query import InboxFilters
from services.inbox_projection.store import InboxStore
from tests.harness import Suite, unique
from tests.integration.inbox_projection.support import InboxReader, converse, delivered, inbox_command, publish_profile

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


BIG_INBOX = 10_000


@pytest.mark.parametrize(
    "filters",
    [
        {"folder": "messages", "categories": ("beauty", "toys"), "min_followers": 1000},
        {"folder": "unread", "max_followers": 3000},
        {"folder": "unreplied", "min_sales_gmv": Decimal("10"), "max_sales_gmv": Decimal("5000")},
    ],
)
async def test_paging_a_10000_conversation_inbox_with_filters_while_messages_arrive(fresh_db, filters: dict) -> None:
    """Rows seeded with their layout (as the rebuild writes them); two projector
    instances deliver messages into random conversations while the API's page
    function pages through them, cursor by cursor. In a database of its own:
    10,000 rows in the service's would slow every later profile copy on an
    engine without secondary indexes."""
    seller = unique("s")
    rng = random.Random(15)
    now = utcnow()
    docs = [inbox_row(seller, f"{seller}-c{n}", n, rng, now) for n in range(BIG_INBOX)]
    store = InboxStore(fresh_db)
    await store.write_fresh(docs)
    before = {d["_id"]: d for d in docs}
    touched: set[str] = set()
    projectors = [Projector(InboxStore(fresh_db)) for _ in range(2)]
    paging_done = asyncio.Event()
    arrived = asyncio.Condition()
    deliveries = 0

    async def arrive(instance: int) -> None:
        nonlocal deliveries
        seq = 1000
        while not paging_done.is_set():
            seq += 1
            creator = f"{seller}-c{rng.randrange(BIG_INBOX)}"
            touched.add(f"{seller}:{creator}")
            await projectors[instance].apply(delivered(seller, creator, seq, rng.choice(["creator", "seller"])))
            async with arrived:
                deliveries += 1
                arrived.notify_all()

    async def messages_arrived(since: int) -> None:
        async with arrived:
            await arrived.wait_for(lambda: deliveries >= since + 2)

    folder = InboxFolder(filters.pop("folder"))
    inbox_filters = InboxFilters(**filters)
    seen: list[str] = []
    arrivals = [asyncio.create_task(arrive(i)) for i in range(2)]
    try:
        cursor = None
        while True:
            page = await inbox_page(store, seller, folder, inbox_filters, 50, cursor)
            seen += [item["creator_id"] for item in page["items"]]
            if not (cursor := page["next_cursor"]):
                break
            await messages_arrived(deliveries)  # between every two pages
    finally:
        paging_done.set()
        await asyncio.gather(*arrivals)
    assert len(touched) > 10  # messages did arrive during the pass
    assert len(seen) == len(set(seen)), "a row was returned twice"
    query = EntryQuery(folder, inbox_filters)
    untouched = [d for c, d in before.items() if c not in touched and query.still_there(d, d["last_activity"])]
    expected = [d["creator_id"] for d in sorted(untouched, key=lambda d: (d["last_activity"], d["_id"]), reverse=True)]
    assert len(expected) > 200
    assert [c for c in seen if f"{seller}:{c}" not in touched] == expected  # none skipped, in order
