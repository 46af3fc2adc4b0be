"""Helpers for quota's integration tests: directory facts, sends, waiting for
quota to have stored what was published, and running other quota instances
beside (or instead of) the suite's."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

from aiokafka import AIOKafkaConsumer

from im_contracts import CreatorProfileUpdated, MessageKind, SellerGmvUpdated, SendMessage, new_event_id, utcnow
from im_contracts.topics import DIRECTORY_EVENTS, SEND_REQUESTED

from services.common.runtime import ServiceRuntime, consumers_of, group_settled, resolve_positions
from services.quota.store import QuotaStore
from services.registry import runtime_factory
from tests.harness import DEFAULT_TIMEOUT, Suite, unique


async def wait_until(condition: Callable[[], Awaitable[bool]], what: str, timeout: float = DEFAULT_TIMEOUT) -> None:
    async def poll() -> None:
        while not await condition():
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll(), timeout)
    except TimeoutError:
        raise AssertionError(f"waited {timeout}s for {what}") from None


def quota_store(suite: Suite) -> QuotaStore:
    return QuotaStore(suite.runtimes["quota"].db)


def seller_send(seller: str, creator: str, *, at: datetime | None = None, kind: MessageKind = MessageKind.TEXT, sender: str = "seller", **extra: Any) -> SendMessage:
    card = {"card_id": unique("card")} if kind is not MessageKind.TEXT else {}
    return SendMessage(
        command_id=unique("cmd"), occurred_at=at or utcnow(), seller_id=seller, creator_id=creator,
        sender=sender, text=f"hi from {sender}", kind=kind, **card, **extra,
    )


def creator_send(seller: str, creator: str, *, at: datetime | None = None) -> SendMessage:
    return seller_send(seller, creator, at=at, sender="creator")


async def report_gmv(suite: Suite, seller: str, gmv: str, at: datetime | None = None) -> None:
    event = SellerGmvUpdated(event_id=new_event_id(), occurred_at=at or utcnow(), seller_id=seller, gmv_30d=Decimal(gmv))
    await suite.publish(DIRECTORY_EVENTS, event)
    store = quota_store(suite)
    await wait_until(lambda: _equals(store.gmv(seller), Decimal(gmv)), f"quota to store GMV {gmv} of {seller}")


async def report_profiles(suite: Suite, followers_by_creator: dict[str, int]) -> None:
    await asyncio.gather(*(
        suite.publish(DIRECTORY_EVENTS, CreatorProfileUpdated(
            event_id=new_event_id(), occurred_at=utcnow(), creator_id=creator, nickname=creator,
            followers=followers, main_category="beauty", sales_gmv_30d=Decimal("10.00"),
        ))
        for creator, followers in followers_by_creator.items()
    ))
    profiles = suite.runtimes["quota"].db["creator_profiles"]

    async def all_stored() -> bool:
        stored = await profiles.find({"_id": {"$in": list(followers_by_creator)}}).to_list()
        return {d["_id"]: d["followers"] for d in stored} == followers_by_creator

    await wait_until(all_stored, f"quota to store {len(followers_by_creator)} creator profiles")


async def send_and_wait(suite: Suite, command: SendMessage) -> Any:
    """Publish a send (through moderation) and return its MessageDelivered / MessageRejected."""
    await suite.publish(SEND_REQUESTED, command)
    return await suite.observer.outcome_of(command.command_id)


async def _equals(value: Awaitable[Any], expected: Any) -> bool:
    return await value == expected


# --- more quota instances -------------------------------------------------------------


async def settle_group(runtimes: list[ServiceRuntime], timeout: float = 60.0) -> None:
    """Wait until, for each subscriber, the instances together own every partition of
    its topics exactly once, every consumer owns some (when there are enough
    partitions), and every owned position is resolved."""

    async def settled() -> bool:
        # By group id: the instances do not list their subscribers in the same order.
        groups: dict[str, list[AIOKafkaConsumer]] = {}
        for runtime in runtimes:
            for subscriber in runtime.broker.subscribers:
                groups.setdefault(subscriber.group_id, []).extend(consumers_of(subscriber))
        if not all(group_settled(consumers) for consumers in groups.values()):
            return False
        for consumers in groups.values():
            await resolve_positions(consumers)
        return True

    await wait_until(settled, "the quota instances to share their partitions", timeout)


@asynccontextmanager
async def extra_quota_instance(suite: Suite) -> AsyncIterator[ServiceRuntime]:
    """A second quota instance: same database and consumer groups as the suite's."""
    first = suite.runtimes["quota"]
    second = runtime_factory("quota")(**suite.settings_overrides("quota"))
    await second.start()
    try:
        await settle_group([first, second])
        yield second
    finally:
        await second.stop()
        await settle_group([first])


@asynccontextmanager
async def quota_replaced(suite: Suite, **overrides: Any) -> AsyncIterator[ServiceRuntime]:
    """The suite's quota instance replaced by one with other settings (same database
    and groups), then by a default one again."""

    async def replace(runtime: ServiceRuntime) -> None:
        await suite.runtimes["quota"].stop()
        await runtime.start()
        await settle_group([runtime])
        suite.runtimes["quota"] = runtime

    await replace(runtime_factory("quota")(**suite.settings_overrides("quota"), **overrides))
    try:
        yield suite.runtimes["quota"]
    finally:
        await replace(runtime_factory("quota")(**suite.settings_overrides("quota")))
