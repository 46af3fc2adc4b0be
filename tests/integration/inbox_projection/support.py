"""Helpers for tests that drive conversations through the real pipeline and
read the inbox projection (which applies events asynchronously, so reads wait
for a condition instead of sleeping)."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import httpx

from im_contracts import (
    CreatorProfileUpdated,
    InboxFolder,
    MessageDelivered,
    SellerAccessChanged,
    SendMessage,
    new_event_id,
    utcnow,
)
from im_contracts.topics import DIRECTORY_EVENTS, MODERATION_EVENTS, SEND_REQUESTED
from services.inbox_projection.layout import chain_id, dimensions_of, folder_bits, is_live
from services.inbox_projection.reads import EntryQuery
from services.inbox_projection.query import InboxFilters
from services.inbox_projection.store import InboxStore
from tests.harness import DEFAULT_TIMEOUT, Suite, unique

T = TypeVar("T")


async def eventually(read: Callable[[], Awaitable[T]], accept: Callable[[T], bool], timeout: float = DEFAULT_TIMEOUT) -> T:
    """Read until the value is accepted; fail with the last value seen."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await read()
        if accept(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s; last value: {value!r}")
        await asyncio.sleep(0.05)


def send(seller: str, creator: str, sender: str = "seller", text: str = "hello", **extra: Any) -> SendMessage:
    return SendMessage(
        command_id=unique("cmd"), occurred_at=utcnow(), seller_id=seller, creator_id=creator, sender=sender, text=text, **extra
    )


def delivered(seller: str, creator: str, seq: int, sender: str) -> MessageDelivered:
    """A delivery as the messaging service publishes it (for driving the projector directly)."""
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


async def converse(suite: Suite, seller: str, creator: str, *senders: str) -> list[MessageDelivered]:
    """Send messages in order through the whole pipeline; return their deliveries."""
    commands = [send(seller, creator, sender, text=f"{sender} says {i}") for i, sender in enumerate(senders)]
    for command in commands:
        await suite.publish(SEND_REQUESTED, command)
    outcomes = [await suite.observer.outcome_of(c.command_id) for c in commands]
    assert all(o.type == "MessageDelivered" for o in outcomes), outcomes
    return outcomes


def profile_event(creator: str, *, followers: int = 1000, category: str = "Beauty", gmv: str = "100.00", **extra: Any) -> CreatorProfileUpdated:
    return CreatorProfileUpdated(
        event_id=new_event_id(),
        occurred_at=extra.pop("occurred_at", utcnow()),
        creator_id=creator,
        nickname=extra.pop("nickname", f"nick-{creator}"),
        followers=followers,
        main_category=category,
        sales_gmv_30d=Decimal(gmv),
        **extra,
    )


async def publish_profile(suite: Suite, creator: str, **fields: Any) -> CreatorProfileUpdated:
    event = profile_event(creator, **fields)
    await suite.publish(DIRECTORY_EVENTS, event)
    return event


async def set_access(suite: Suite, seller: str, status: str, occurred_at: datetime | None = None) -> None:
    """What moderation publishes on SetSellerAccess; every service follows it."""
    await suite.publish(
        MODERATION_EVENTS,
        SellerAccessChanged(
            event_id=new_event_id(), occurred_at=occurred_at or utcnow(), command_id=unique("acc"), seller_id=seller, status=status
        ),
    )


async def wait_for_status(http: httpx.AsyncClient, path: str, status: int) -> httpx.Response:
    async def get() -> httpx.Response:
        return await http.get(path)

    return await eventually(get, lambda r: r.status_code == status)


def inbox_command(kind: type, seller: str, creator: str, **extra: Any) -> Any:
    return kind(command_id=unique("ic"), occurred_at=utcnow(), seller_id=seller, creator_id=creator, **extra)


def moderation_event(kind: type, seller: str, creator: str) -> Any:
    """What moderation publishes for a block or unblock (published directly here)."""
    return kind(event_id=new_event_id(), occurred_at=utcnow(), command_id=unique("mc"), seller_id=seller, creator_id=creator)


class InboxReader:
    """The inbox-projection HTTP API for one seller."""

    def __init__(self, http: httpx.AsyncClient, seller: str) -> None:
        self.http = http
        self.seller = seller

    async def conversation(self, creator: str) -> httpx.Response:
        return await self.http.get(f"/v1/sellers/{self.seller}/conversations/{creator}")

    async def page(self, **params: Any) -> httpx.Response:
        return await self.http.get(f"/v1/sellers/{self.seller}/inbox", params=params)

    async def counts(self) -> dict[str, int]:
        response = await self.http.get(f"/v1/sellers/{self.seller}/inbox/counts")
        assert response.status_code == 200, response.text
        return response.json()

    async def creators(self, **params: Any) -> list[str]:
        """Every page of a listing, in order: the creator ids."""
        found: list[str] = []
        cursor = None
        while True:
            response = await self.page(**params, **({"cursor": cursor} if cursor else {}))
            assert response.status_code == 200, response.text
            body = response.json()
            found += [item["creator_id"] for item in body["items"]]
            if not (cursor := body["next_cursor"]):
                return found

    async def wait_row(self, creator: str, accept: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The conversation's row once it satisfies `accept`."""

        async def read() -> dict[str, Any] | None:
            response = await self.conversation(creator)
            return response.json() if response.status_code == 200 else None

        row = await eventually(read, lambda r: r is not None and accept(r))
        assert row is not None
        return row

    async def wait_seq(self, creator: str, seq: int) -> dict[str, Any]:
        return await self.wait_row(creator, lambda r: r["last_message"]["seq"] >= seq)


# --- the serving layout ----------------------------------------------------------

LAYOUT_FIELDS = {"v", "synced", "placed", "stale"}


async def assert_layout_shows_rows(db, seller: str, store: InboxStore | None = None) -> None:
    """Each stored row of the seller has one live entry, matching it, in each of
    its chains and no other; the counts and every folder's listing equal the rows'
    (as `store` answers them: a fresh instance unless given)."""
    store = store or InboxStore(db)
    rows = await db["conversations"].find({"seller_id": seller}).to_list()
    live: dict[tuple[str, str], dict] = {}
    for bucket in await db["inbox_buckets"].find({"seller_id": seller}).to_list():
        chain = bucket["_id"].rsplit("|", 1)[0]
        for creator, entry in bucket["e"].items():
            if is_live(entry):
                assert (chain, creator) not in live, f"two live entries for {creator} in {chain}"
                live[(chain, creator)] = entry
    expected_entries = {
        (chain_id(seller, d), r["creator_id"]): (r["last_activity"], folder_bits(r["folders"]), r["followers"])
        for r in rows for d in dimensions_of(r)
    }
    shown = {key: (e["t"], e["f"], e["fo"]) for key, e in live.items()}
    differing = {key: (shown.get(key), expected_entries.get(key)) for key in shown.keys() | expected_entries.keys() if shown.get(key) != expected_entries.get(key)}
    assert not differing, f"layout (shown, expected) differs: {differing}"
    unsynced = [(r["_id"], r["v"], r["synced"], r["stale"]) for r in rows if r["synced"] != r["v"] or r["stale"]]
    assert not unsynced, f"rows whose layout trails them: {unsynced}"
    expected_counts = {f.value: sum(f.value in r["folders"] for r in rows) for f in InboxFolder}
    assert await store.counts(seller) == expected_counts
    for folder in InboxFolder:
        page = await store.page(seller, EntryQuery(folder, InboxFilters()), 1000)
        expected = sorted((r for r in rows if folder.value in r["folders"]), key=lambda r: (r["last_activity"], r["_id"]), reverse=True)
        assert [r["_id"] for r in page] == [r["_id"] for r in expected]
