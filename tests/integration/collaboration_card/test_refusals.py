"""Cards are judged by the pipeline exactly like text (R18): refused when the seller blocked
the creator (R11) and when the seller's weekly outreach quota is used up (R3).

Moderation and quota may still be pass-through stages in a checkout; each test runs only
where that stage is the real one, recognised by the read route DESIGN §5 gives it."""

import asyncio
from decimal import Decimal

import pytest

from im_contracts import (
    BLOCKED_BY_SELLER_CREATOR_DETAIL,
    BlockCreator,
    MessageKind,
    SellerGmvUpdated,
    SendMessage,
    new_event_id,
    utcnow,
)
from im_contracts.topics import COLLABORATION_COMMANDS, DIRECTORY_EVENTS, MODERATION_COMMANDS, MODERATION_EVENTS, SEND_REQUESTED
from tests.harness import Suite, unique
from tests.integration.collaboration_card.support import (
    MODERATION_BLOCKS_PATH,
    QUOTA_PATH,
    card,
    card_outcome,
    conversation,
    decision_of,
    event,
    make_reachable,
    product_card,
    respond,
    review,
    sample_request,
    send,
    serves,
    target_collaboration,
    wait_until,
)

pytestmark = pytest.mark.integration


async def test_cards_between_a_seller_and_the_creator_it_blocked_are_rejected(suite: Suite) -> None:
    if not serves(suite, "moderation", MODERATION_BLOCKS_PATH):
        pytest.skip("moderation is pass-through in this checkout (no blocks endpoint): it refuses nothing yet")
    seller, creator = unique("s"), unique("c")
    await make_reachable(suite, seller, creator)
    block = BlockCreator(command_id=unique("cmd"), occurred_at=utcnow(), seller_id=seller, creator_id=creator)
    await suite.publish(MODERATION_COMMANDS, block)
    await suite.observer.wait_for(MODERATION_EVENTS, lambda m: m.type == "CreatorBlocked" and m.command_id == block.command_id)

    product = await send(suite, product_card(seller, creator))
    target = await send(suite, target_collaboration(seller, creator))
    sample = await send(suite, sample_request(seller, creator))
    for card_id, kind in (
        (product, MessageKind.PRODUCT_CARD),
        (target, MessageKind.TARGET_COLLABORATION),
        (sample, MessageKind.SAMPLE_REQUEST),
    ):
        outcome = await card_outcome(suite, card_id, kind)
        assert (outcome.type, outcome.reason) == ("CardRejected", "BLOCKED_BY_SELLER"), kind
    sample_outcome = await card_outcome(suite, sample, MessageKind.SAMPLE_REQUEST)
    assert sample_outcome.detail == BLOCKED_BY_SELLER_CREATOR_DETAIL
    assert await conversation(suite, seller, creator) == []

    shown = await card(suite, product)
    assert (shown["status"], shown["reason"], shown["message_id"]) == ("rejected", "BLOCKED_BY_SELLER", None)
    # A target collaboration that never arrived cannot be accepted.
    accept = respond(target, seller, creator, "accept")
    await suite.publish(COLLABORATION_COMMANDS, accept)
    assert (await decision_of(suite, accept.command_id)).outcome == "response_refused:NOT_DELIVERED"
    # A sample request the seller never received is closed, not left pending.
    closed = await card(suite, sample)
    assert (closed["status"], closed["reason"], closed["decision"]) == ("rejected", "BLOCKED_BY_SELLER", None)
    late_review = review(seller, sample, "approve")
    await suite.publish(COLLABORATION_COMMANDS, late_review)
    assert (await event(suite, "SampleReviewFailed", command_id=late_review.command_id)).reason == "ALREADY_REVIEWED"


async def test_cards_beyond_the_weekly_outreach_quota_are_rejected(suite: Suite) -> None:
    if not serves(suite, "quota", QUOTA_PATH):
        pytest.skip("quota is pass-through in this checkout (no quota endpoint): it refuses nothing yet")
    seller = unique("s")
    await suite.publish(
        DIRECTORY_EVENTS, SellerGmvUpdated(event_id=new_event_id(), occurred_at=utcnow(), seller_id=seller, gmv_30d=Decimal("100"))
    )
    async with suite.http("quota") as http:

        async def tier_one() -> dict | None:
            quota = (await http.get(f"/v1/sellers/{seller}/quota")).json()
            return quota if quota["tier"] == "T1" else None

        limit = (await wait_until(tier_one))["weekly_limit"]
    assert isinstance(limit, int), "T1 has a weekly limit (R6)"

    creators = [unique("c") for _ in range(limit + 2)]
    await make_reachable(suite, seller, *creators)
    outreach = [
        SendMessage(command_id=unique("cmd"), occurred_at=utcnow(), seller_id=seller, creator_id=creator, sender="seller", text="Hello!")
        for creator in creators[:limit]
    ]
    for message in outreach:
        await suite.publish(SEND_REQUESTED, message)
    outcomes = await asyncio.gather(*(suite.observer.outcome_of(m.command_id) for m in outreach))
    assert {o.type for o in outcomes} == {"MessageDelivered"}

    product = await send(suite, product_card(seller, creators[-2]))
    target = await send(suite, target_collaboration(seller, creators[-1]))
    for card_id, kind in ((product, MessageKind.PRODUCT_CARD), (target, MessageKind.TARGET_COLLABORATION)):
        outcome = await card_outcome(suite, card_id, kind)
        assert (outcome.type, outcome.reason) == ("CardRejected", "QUOTA_EXHAUSTED"), kind
        assert ((await card(suite, card_id))["status"], (await card(suite, card_id))["reason"]) == ("rejected", "QUOTA_EXHAUSTED")
