"""Product cards and target collaborations through real Kafka and the database (R18):
each kind delivered as its own message, idempotent per command, accepted or declined
once by the addressed creator only."""

import pytest

from im_contracts import MessageKind, SellerAccessChanged, new_event_id, utcnow
from im_contracts.topics import COLLABORATION_COMMANDS, COLLABORATION_EVENTS, MODERATION_EVENTS
from tests.harness import Suite, unique
from tests.integration.collaboration_card.support import (
    COLLABORATION,
    card,
    card_outcome,
    conversation,
    decision_of,
    event,
    make_reachable,
    product_card,
    respond,
    send,
    target_collaboration,
    wait_until,
)

pytestmark = pytest.mark.integration


async def delivered_target_collaboration(suite: Suite) -> tuple[str, str, str]:
    seller, creator = unique("s"), unique("c")
    await make_reachable(suite, seller, creator)
    card_id = await send(suite, target_collaboration(seller, creator))
    assert (await card_outcome(suite, card_id, MessageKind.TARGET_COLLABORATION)).type == "CardDelivered"
    return seller, creator, card_id


async def test_product_card_is_delivered_as_a_product_card_message(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    await make_reachable(suite, seller, creator)
    command = product_card(seller, creator)
    card_id = await send(suite, command)

    delivered = await card_outcome(suite, card_id, MessageKind.PRODUCT_CARD)
    assert delivered.type == "CardDelivered"
    assert (delivered.command_id, delivered.seller_id, delivered.creator_id) == (command.command_id, seller, creator)

    [message] = await conversation(suite, seller, creator)
    assert (message["kind"], message["card_id"], message["message_id"]) == ("product_card", card_id, delivered.message_id)
    assert (message["sender"], message["entry_point"]) == ("seller", "api")
    assert "Blender 3000" in message["text"] and "49.90 USD" in message["text"]

    shown = await card(suite, card_id)
    assert (shown["status"], shown["message_id"], shown["kind"]) == ("delivered", delivered.message_id, "product_card")
    assert shown["product"] == {
        "product_id": "prod-9",
        "title": "Blender 3000",
        "price": "49.90",
        "currency": "USD",
        "commission_rate": "0.15",
        "image_url": "https://cdn.example.com/p/9.jpg",
    }


async def test_a_redelivered_card_command_sends_one_card(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    await make_reachable(suite, seller, creator)
    command = product_card(seller, creator)
    for _ in range(3):
        card_id = await send(suite, command)
    # Same conversation, so everything about the repeats is out before the follow-up's outcome.
    follow_up = await send(suite, product_card(seller, creator))
    await card_outcome(suite, follow_up, MessageKind.PRODUCT_CARD)

    outcomes = {
        o.value for o in suite.observer.records[COLLABORATION_EVENTS] if getattr(o.message, "card_id", None) == card_id
    }
    assert len(outcomes) == 1, "one CardDelivered, republished as identical bytes"
    assert [m["card_id"] for m in await conversation(suite, seller, creator)] == [card_id, follow_up]
    stored = await suite.runtimes[COLLABORATION].db["cards"].count_documents({"seller_id": seller})
    assert stored == 2


async def test_target_collaboration_is_delivered_and_accepted_once(suite: Suite) -> None:
    seller, creator, card_id = await delivered_target_collaboration(suite)
    [message] = await conversation(suite, seller, creator)
    assert (message["kind"], message["card_id"], message["entry_point"]) == (
        "target_collaboration",
        card_id,
        "target_collaboration",
    )
    assert "Spring launch" in message["text"]

    accept = respond(card_id, seller, creator, "accept")
    await suite.publish(COLLABORATION_COMMANDS, accept)
    accepted = await event(suite, "TargetCollaborationAccepted", command_id=accept.command_id)
    assert (accepted.card_id, accepted.seller_id, accepted.creator_id) == (card_id, seller, creator)

    second = respond(card_id, seller, creator, "decline")
    await suite.publish(COLLABORATION_COMMANDS, second)
    refused = await decision_of(suite, second.command_id)
    assert (refused.outcome, refused.outgoing) == ("response_refused:ALREADY_RESPONDED", ())

    await suite.publish(COLLABORATION_COMMANDS, accept)  # a redelivery replays, it is no second response
    await suite.observer.wait_for(COLLABORATION_EVENTS, lambda m: m.event_id == accepted.event_id, count=2)

    shown = await card(suite, card_id)
    assert (shown["status"], shown["response"], shown["plan"]["plan_id"]) == ("accepted", "accept", "plan-3")


async def test_target_collaboration_is_declined(suite: Suite) -> None:
    seller, creator, card_id = await delivered_target_collaboration(suite)
    decline = respond(card_id, seller, creator, "decline")
    await suite.publish(COLLABORATION_COMMANDS, decline)
    declined = await event(suite, "TargetCollaborationDeclined", command_id=decline.command_id)
    assert (declined.card_id, declined.creator_id) == (card_id, creator)
    assert (await card(suite, card_id))["status"] == "declined"


async def test_only_the_addressed_creator_may_respond(suite: Suite) -> None:
    seller, creator, card_id = await delivered_target_collaboration(suite)
    impostor = respond(card_id, seller, unique("c"), "accept")
    wrong_seller = respond(card_id, unique("s"), creator, "accept")
    unknown = respond("card-unknown", seller, creator, "accept")
    for command in (impostor, wrong_seller, unknown):
        await suite.publish(COLLABORATION_COMMANDS, command)

    assert (await decision_of(suite, impostor.command_id)).outcome == "response_refused:NOT_ADDRESSEE"
    assert (await decision_of(suite, wrong_seller.command_id)).outcome == "response_refused:UNKNOWN_CARD"
    assert (await decision_of(suite, unknown.command_id)).outcome == "response_refused:UNKNOWN_CARD"
    assert (await card(suite, card_id))["status"] == "delivered"

    # The addressed creator still may, afterwards.
    accept = respond(card_id, seller, creator, "accept")
    await suite.publish(COLLABORATION_COMMANDS, accept)
    await event(suite, "TargetCollaborationAccepted", command_id=accept.command_id)
    refused = {impostor.command_id, wrong_seller.command_id, unknown.command_id}
    assert not suite.observer.messages(COLLABORATION_EVENTS, lambda m: m.command_id in refused)


async def test_card_api_answers_404_for_an_unknown_card_and_403_for_a_revoked_seller(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    await make_reachable(suite, seller, creator)
    card_id = await send(suite, product_card(seller, creator))
    await card_outcome(suite, card_id, MessageKind.PRODUCT_CARD)

    async with suite.http(COLLABORATION) as http:
        missing = await http.get("/v1/cards/card-unknown")
        assert (missing.status_code, missing.json()["error"]) == (404, "NOT_FOUND")

        revoked = SellerAccessChanged(
            event_id=new_event_id(), occurred_at=utcnow(), command_id=unique("cmd"), seller_id=seller, status="shop_closed"
        )
        await suite.publish(MODERATION_EVENTS, revoked)

        async def refused() -> bool:
            return (await http.get(f"/v1/cards/{card_id}")).status_code == 403

        await wait_until(refused)
        assert (await http.get(f"/v1/cards/{card_id}")).json()["error"] == "SELLER_ACCESS_REVOKED"
