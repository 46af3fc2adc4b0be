"""Sample requests through real Kafka and the database (R18): a creator asks, a sample card
shows in the conversation, the owning seller approves or rejects it once, and every other
review fails with NOT_FOUND, NOT_OWNER or ALREADY_REVIEWED."""

import asyncio

import pytest

from im_contracts import MessageKind, SampleReviewFailure, SellerAccessChanged, new_event_id, utcnow
from im_contracts.topics import COLLABORATION_COMMANDS, COLLABORATION_EVENTS, MODERATION_EVENTS
from services.collaboration_card.service import CardService
from services.collaboration_card.store import CardStore
from tests.harness import Suite, unique
from tests.integration.collaboration_card.support import (
    COLLABORATION,
    card,
    card_outcome,
    conversation,
    event,
    review,
    sample_request,
    send,
    wait_until,
)

pytestmark = pytest.mark.integration


async def requested_sample(suite: Suite, seller: str, creator: str, **changes) -> str:
    command = sample_request(seller, creator, **changes)
    sample_id = await send(suite, command)
    requested = await event(suite, "SampleRequested", command_id=command.command_id)
    assert (requested.sample_request_id, requested.seller_id, requested.creator_id) == (sample_id, seller, creator)
    assert (await card_outcome(suite, sample_id, MessageKind.SAMPLE_REQUEST)).type == "CardDelivered"
    return sample_id


async def sample_requests(suite: Suite, seller: str, status: str | None = None) -> list[dict]:
    async with suite.http(COLLABORATION) as http:
        response = await http.get(f"/v1/sellers/{seller}/sample-requests", params={"status": status} if status else {})
    assert response.status_code == 200, response.text
    return response.json()["items"]


async def failed_review(suite: Suite, command) -> object:
    await suite.publish(COLLABORATION_COMMANDS, command)
    return await event(suite, "SampleReviewFailed", command_id=command.command_id)


async def test_sample_request_is_approved_once_and_every_other_review_fails(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    sample_id = await requested_sample(suite, seller, creator)
    [pending] = await sample_requests(suite, seller, "pending")
    assert (pending["sample_request_id"], pending["status"], pending["quantity"], pending["note"]) == (
        sample_id,
        "pending",
        2,
        "For a video",
    )
    assert pending["decision"] is None and pending["message_id"] is not None

    approve = review(seller, sample_id, "approve")
    await suite.publish(COLLABORATION_COMMANDS, approve)
    approved = await event(suite, "SampleRequestApproved", command_id=approve.command_id)
    assert (approved.sample_request_id, approved.seller_id, approved.creator_id) == (sample_id, seller, creator)
    review_message = await card_outcome(suite, sample_id, MessageKind.SAMPLE_REVIEW)
    assert (review_message.type, review_message.command_id) == ("CardDelivered", approve.command_id)

    # A redelivery of the same review replays its outcome; it is not ALREADY_REVIEWED.
    await suite.publish(COLLABORATION_COMMANDS, approve)
    await suite.observer.wait_for(COLLABORATION_EVENTS, lambda m: m.event_id == approved.event_id, count=2)

    again = await failed_review(suite, review(seller, sample_id, "reject", "Changed my mind"))
    assert (again.reason, again.creator_id) == (SampleReviewFailure.ALREADY_REVIEWED, creator)
    other_seller = unique("s")
    not_owner = await failed_review(suite, review(other_seller, sample_id, "approve"))
    assert (not_owner.reason, not_owner.seller_id, not_owner.creator_id) == (SampleReviewFailure.NOT_OWNER, other_seller, None)
    not_found = await failed_review(suite, review(seller, "card-unknown", "approve"))
    assert (not_found.reason, not_found.sample_request_id, not_found.creator_id) == (
        SampleReviewFailure.NOT_FOUND,
        "card-unknown",
        None,
    )
    assert not suite.observer.messages(
        COLLABORATION_EVENTS, lambda m: m.type == "SampleRequestApproved" and m.command_id != approve.command_id and m.sample_request_id == sample_id
    )

    shown = await card(suite, sample_id)
    assert (shown["status"], shown["decision"]["decision"], shown["decision"]["message_id"]) == (
        "approved",
        "approve",
        review_message.message_id,
    )
    assert [item["sample_request_id"] for item in await sample_requests(suite, seller, "approved")] == [sample_id]
    assert await sample_requests(suite, seller, "pending") == []

    messages = await conversation(suite, seller, creator)
    assert [(m["kind"], m["sender"], m["card_id"]) for m in messages] == [
        ("sample_request", "creator", sample_id),
        ("sample_review", "seller", sample_id),
    ]
    assert messages[0]["text"] == "Sample request: 2 × Blender 3000 (product prod-9)\nNote: For a video"
    assert messages[1]["text"] == "Sample request approved: 2 × Blender 3000"


async def test_sample_request_is_rejected_with_the_sellers_reason(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    sample_id = await requested_sample(suite, seller, creator, quantity=5, note=None)
    reject = review(seller, sample_id, "reject", "Out of stock")
    await suite.publish(COLLABORATION_COMMANDS, reject)
    rejected = await event(suite, "SampleRequestRejected", command_id=reject.command_id)
    assert (rejected.sample_request_id, rejected.creator_id, rejected.reason) == (sample_id, creator, "Out of stock")
    await card_outcome(suite, sample_id, MessageKind.SAMPLE_REVIEW)

    [item] = await sample_requests(suite, seller, "rejected")
    assert (item["status"], item["quantity"], item["note"], item["decision"]["reason"]) == (
        "rejected",
        5,
        None,
        "Out of stock",
    )
    assert (await conversation(suite, seller, creator))[-1]["text"] == "Sample request declined: Blender 3000\nReason: Out of stock"


async def test_concurrent_reviews_have_exactly_one_winner(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    sample_id = await requested_sample(suite, seller, creator)
    runtime = suite.runtimes[COLLABORATION]
    service = CardService(CardStore(runtime.db), runtime.log)
    reviews = [review(seller, sample_id, "approve" if i % 2 else "reject") for i in range(20)]

    decisions = await asyncio.gather(*(service.review(command) for command in reviews))
    assert sorted(d.outcome for d in decisions).count("review_failed:ALREADY_REVIEWED") == 19
    [winner] = [c for c, d in zip(reviews, decisions) if d.outcome.startswith("reviewed:")]
    assert (await card(suite, sample_id))["decision"]["decision"] == winner.decision


async def test_sample_requests_list_newest_first_and_refuses_bad_status_and_revoked_seller(suite: Suite) -> None:
    seller = unique("s")
    first = await requested_sample(suite, seller, unique("c"))
    second = await requested_sample(suite, seller, unique("c"))
    assert [item["sample_request_id"] for item in await sample_requests(suite, seller)] == [second, first]

    async with suite.http(COLLABORATION) as http:
        bad = await http.get(f"/v1/sellers/{seller}/sample-requests", params={"status": "shipped"})
        assert (bad.status_code, bad.json()["error"]) == (422, "INVALID_REQUEST")

        await suite.publish(
            MODERATION_EVENTS,
            SellerAccessChanged(
                event_id=new_event_id(), occurred_at=utcnow(), command_id=unique("cmd"), seller_id=seller, status="deactivated"
            ),
        )

        async def refused() -> bool:
            return (await http.get(f"/v1/sellers/{seller}/sample-requests")).status_code == 403

        await wait_until(refused)
        assert (await http.get(f"/v1/sellers/{seller}/sample-requests")).json()["error"] == "SELLER_ACCESS_REVOKED"
