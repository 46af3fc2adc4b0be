"""How a refused card message becomes the card's outcome, on the real database.

These drive the service's use cases directly, because a pass-through pipeline refuses
nothing; test_refusals.py covers the same paths end to end once moderation and quota do."""

import pytest

from im_contracts import MessageKind, MessageRejected, ReasonCode, RejectionStage, SendMessage, new_event_id, parse, utcnow
from im_contracts.topics import COLLABORATION_EVENTS, SEND_REQUESTED
from services.collaboration_card.service import CardService
from services.collaboration_card.store import CardStore
from services.common.idempotency import Decision
from tests.harness import Suite, unique
from tests.integration.collaboration_card.support import COLLABORATION, card, product_card, review, sample_request

pytestmark = pytest.mark.integration


def service_of(suite: Suite) -> CardService:
    runtime = suite.runtimes[COLLABORATION]
    return CardService(CardStore(runtime.db), runtime.log)


def published(decision: Decision, topic: str) -> list:
    return [parse(topic, record.value) for record in decision.outgoing if record.topic == topic]


def refusal_of(message: SendMessage, reason: ReasonCode) -> MessageRejected:
    return MessageRejected(
        event_id=new_event_id(),
        occurred_at=utcnow(),
        command_id=message.command_id,
        seller_id=message.seller_id,
        creator_id=message.creator_id,
        sender=message.sender,
        kind=message.kind,
        card_id=message.card_id,
        stage=RejectionStage.QUOTA,
        reason=reason,
        detail="Weekly outreach limit reached.",
    )


async def test_a_refused_card_message_rejects_the_card(suite: Suite) -> None:
    service = service_of(suite)
    sent = await service.send_card(product_card(unique("s"), unique("c")))
    [message] = published(sent, SEND_REQUESTED)

    decision = await service.follow_outcome(refusal_of(message, ReasonCode.QUOTA_EXHAUSTED))
    [rejected] = published(decision, COLLABORATION_EVENTS)
    assert (rejected.type, rejected.card_id, rejected.reason, rejected.detail) == (
        "CardRejected",
        message.card_id,
        ReasonCode.QUOTA_EXHAUSTED,
        "Weekly outreach limit reached.",
    )
    shown = await card(suite, message.card_id)
    assert (shown["status"], shown["reason"], shown["message_id"]) == ("rejected", "QUOTA_EXHAUSTED", None)


async def test_an_outcome_for_a_message_no_card_sent_is_ignored(suite: Suite) -> None:
    service = service_of(suite)
    sent = await service.send_card(product_card(unique("s"), unique("c")))
    [message] = published(sent, SEND_REQUESTED)
    forged = message.model_copy(update={"command_id": unique("forged")})

    decision = await service.follow_outcome(refusal_of(forged, ReasonCode.QUOTA_EXHAUSTED))
    assert (decision.outcome, decision.outgoing) == ("outcome_ignored", ())
    assert (await card(suite, message.card_id))["status"] == "pending"


async def test_a_sample_request_the_seller_never_received_is_closed(suite: Suite) -> None:
    service = service_of(suite)
    seller = unique("s")
    sent = await service.send_card(sample_request(seller, unique("c")))
    [message] = published(sent, SEND_REQUESTED)

    await service.follow_outcome(refusal_of(message, ReasonCode.BLOCKED_BY_SELLER))
    shown = await card(suite, message.card_id)
    assert (shown["status"], shown["reason"], shown["decision"]) == ("rejected", "BLOCKED_BY_SELLER", None)
    late = await service.review(review(seller, message.card_id, "approve"))
    assert late.outcome == "review_failed:ALREADY_REVIEWED"


async def test_a_review_made_before_the_sample_card_was_refused_stands(suite: Suite) -> None:
    service = service_of(suite)
    seller = unique("s")
    sent = await service.send_card(sample_request(seller, unique("c")))
    [message] = published(sent, SEND_REQUESTED)
    approve = review(seller, message.card_id, "approve")
    assert (await service.review(approve)).outcome == "reviewed:approve"

    decision = await service.follow_outcome(refusal_of(message, ReasonCode.BLOCKED_BY_SELLER))
    assert [e.kind for e in published(decision, COLLABORATION_EVENTS)] == [MessageKind.SAMPLE_REQUEST]
    shown = await card(suite, message.card_id)
    assert (shown["status"], shown["decision"]["decision"], shown["reason"]) == ("approved", "approve", "BLOCKED_BY_SELLER")
