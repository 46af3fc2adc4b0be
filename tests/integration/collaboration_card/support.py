"""Commands, waits and capability checks shared by the collaboration-card integration tests."""

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

from im_contracts import (
    CreatorProfileUpdated,
    MessageKind,
    RequestSample,
    RespondToTargetCollaboration,
    ReviewSampleRequest,
    SendProductCard,
    SendTargetCollaboration,
    new_event_id,
    utcnow,
)
from im_contracts.topics import COLLABORATION_COMMANDS, COLLABORATION_EVENTS, DIRECTORY_EVENTS
from services.collaboration_card.domain import card_id_for
from services.common.idempotency import Decision
from tests.contracts.examples import PLAN, PRODUCT
from tests.harness import DEFAULT_TIMEOUT, Suite, unique

T = TypeVar("T")
COLLABORATION = "collaboration-card"
# Routes DESIGN §5 gives the real moderation and quota; the pass-through stages serve none.
MODERATION_BLOCKS_PATH = "/v1/sellers/{seller_id}/blocks"
QUOTA_PATH = "/v1/sellers/{seller_id}/quota"
OUTREACH_PATH = "/v1/sellers/{seller_id}/creators/{creator_id}/outreach"


def serves(suite: Suite, service: str, path: str) -> bool:
    """Whether `service` in this checkout is the real implementation that serves `path`
    (read from its OpenAPI paths: FastAPI includes routers lazily, so `app.routes` may not list them)."""
    return path in suite.runtimes[service].http_app.openapi()["paths"]


# --- commands ------------------------------------------------------------------


def product_card(seller: str, creator: str) -> SendProductCard:
    return SendProductCard(command_id=unique("cmd"), occurred_at=utcnow(), seller_id=seller, creator_id=creator, product=PRODUCT)


def target_collaboration(seller: str, creator: str) -> SendTargetCollaboration:
    return SendTargetCollaboration(command_id=unique("cmd"), occurred_at=utcnow(), seller_id=seller, creator_id=creator, plan=PLAN)


def sample_request(seller: str, creator: str, quantity: int = 2, note: str | None = "For a video") -> RequestSample:
    return RequestSample(
        command_id=unique("cmd"),
        occurred_at=utcnow(),
        seller_id=seller,
        creator_id=creator,
        product_id=PRODUCT.product_id,
        product_title=PRODUCT.title,
        quantity=quantity,
        note=note,
    )


def respond(card_id: str, seller: str, creator: str, response: str) -> RespondToTargetCollaboration:
    return RespondToTargetCollaboration(
        command_id=unique("cmd"), occurred_at=utcnow(), seller_id=seller, creator_id=creator, card_id=card_id, response=response
    )


def review(seller: str, sample_request_id: str, decision: str, reason: str | None = None) -> ReviewSampleRequest:
    return ReviewSampleRequest(
        command_id=unique("cmd"),
        occurred_at=utcnow(),
        seller_id=seller,
        sample_request_id=sample_request_id,
        decision=decision,
        reason=reason,
    )


async def send(suite: Suite, command: Any) -> str:
    """Publish a card command; returns the id of the card it creates."""
    await suite.publish(COLLABORATION_COMMANDS, command)
    return card_id_for(command.command_id)


# --- waits ---------------------------------------------------------------------


async def wait_until(condition: Callable[[], Awaitable[T]], timeout: float = DEFAULT_TIMEOUT) -> T:
    """Poll `condition` until it returns something truthy; for state that no topic announces."""
    async def satisfied() -> T:
        while not (value := await condition()):
            await asyncio.sleep(0.05)
        return value

    try:
        return await asyncio.wait_for(satisfied(), timeout)
    except TimeoutError:
        raise AssertionError(f"{condition.__qualname__} still false after {timeout}s") from None


async def event(suite: Suite, type_name: str, **fields: Any) -> Any:
    """The first event of `type_name` on im.collaboration.events with these field values."""
    found = await suite.observer.wait_for(
        COLLABORATION_EVENTS,
        lambda m: m.type == type_name and all(getattr(m, name) == value for name, value in fields.items()),
    )
    return found[0]


async def card_outcome(suite: Suite, card_id: str, kind: MessageKind) -> Any:
    """The CardDelivered or CardRejected of one message of a card."""
    found = await suite.observer.wait_for(
        COLLABORATION_EVENTS,
        lambda m: m.type in ("CardDelivered", "CardRejected") and m.card_id == card_id and m.kind == kind,
    )
    return found[0]


async def decision_of(suite: Suite, command_id: str) -> Decision:
    """The collaboration-card decision stored for a command (for commands that publish nothing)."""
    return await wait_until(lambda: suite.runtimes[COLLABORATION].decisions.find(command_id))


async def card(suite: Suite, card_id: str) -> dict[str, Any]:
    async with suite.http(COLLABORATION) as http:
        response = await http.get(f"/v1/cards/{card_id}")
    assert response.status_code == 200, response.text
    return response.json()


async def conversation(suite: Suite, seller: str, creator: str) -> list[dict[str, Any]]:
    """The conversation's messages in seq order, from messaging's history endpoint."""
    async with suite.http("messaging") as http:
        response = await http.get(f"/v1/conversations/{seller}/{creator}/messages")
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["items"]))


# --- making a creator reachable -------------------------------------------------


async def make_reachable(suite: Suite, seller: str, *creators: str) -> None:
    """Give each creator a profile under every tier's follower cap (an unknown profile is above
    any cap, R8) and, where quota is real, wait until quota lets the seller reach them."""
    for creator in creators:
        profile = CreatorProfileUpdated(
            event_id=new_event_id(),
            occurred_at=utcnow(),
            creator_id=creator,
            nickname=f"nick {creator}",
            followers=1_000,
            main_category="Home & Kitchen",
            sales_gmv_30d=Decimal("100"),
        )
        await suite.publish(DIRECTORY_EVENTS, profile)
    if not serves(suite, "quota", OUTREACH_PATH):
        return
    async with suite.http("quota") as http:
        for creator in creators:  # one at a time: polling them all at once only loads the database

            async def can_send() -> bool:
                response = await http.get(f"/v1/sellers/{seller}/creators/{creator}/outreach")
                return response.status_code == 200 and response.json()["can_send"]

            await wait_until(can_send)
