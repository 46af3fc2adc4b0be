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
    MessageDelivered,
    SellerAccessChanged,
    SendMessage,
    new_event_id,
    utcnow,
)
from im_contracts.topics import DIRECTORY_EVENTS, MODERATION_EVENTS, SEND_REQUESTED
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
