"""Quota's admission through real Kafka and the database, with the default policy:
the reply cap, the follower cap, charge-once, connections, sample reviews and
replays (R3-R9, R18, R20, I2)."""

import asyncio
from datetime import timedelta

import pytest

from im_contracts import (
    ChargeSource,
    ConnectionVia,
    CreatorConnected,
    MessageKind,
    TargetCollaborationAccepted,
    new_event_id,
    utcnow,
)
from im_contracts.topics import COLLABORATION_EVENTS, DIRECTORY_EVENTS, QUOTA_EVENTS, SEND_ADMITTED, SEND_REQUESTED
from services.quota.app import DEFAULT_POLICY_PATH, load_policy
from services.quota.domain import STARTER_POOL
from tests.harness import Suite, unique
from tests.integration.quota.support import (
    creator_send,
    quota_store,
    report_gmv,
    report_profiles,
    send_and_wait,
    seller_send,
    wait_until,
)

pytestmark = pytest.mark.integration
POLICY = load_policy(DEFAULT_POLICY_PATH)


async def test_reply_required_after_five_seller_messages_until_the_creator_writes(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    await report_profiles(suite, {creator: 5_000})
    sends = [seller_send(seller, creator, kind=kind) for kind in (MessageKind.TEXT, MessageKind.PRODUCT_CARD, MessageKind.TEXT, MessageKind.TARGET_COLLABORATION, MessageKind.TEXT, MessageKind.PRODUCT_CARD)]
    for command in sends:  # one conversation: one partition, handled in this order
        await suite.publish(SEND_REQUESTED, command)
    outcomes = [await suite.observer.outcome_of(c.command_id) for c in sends]

    assert [o.type for o in outcomes] == ["MessageDelivered"] * 5 + ["MessageRejected"]
    assert [o.quota_charged for o in outcomes[:5]] == [True, False, False, False, False]
    refused = outcomes[5]
    assert (refused.stage, refused.reason, refused.kind, refused.card_id) == ("quota", "REPLY_REQUIRED", "product_card", sends[5].card_id)

    assert (await send_and_wait(suite, creator_send(seller, creator))).type == "MessageDelivered"
    after_reply = [await send_and_wait(suite, seller_send(seller, creator)) for _ in range(2)]
    assert [(o.type, o.quota_charged) for o in after_reply] == [("MessageDelivered", False)] * 2


async def test_creator_not_eligible_above_the_tier_one_cap_or_with_an_unknown_profile(suite: Suite) -> None:
    seller, big, capped, unknown = unique("s"), unique("big"), unique("c"), unique("nobody")
    await asyncio.gather(report_gmv(suite, seller, "1500.00"), report_profiles(suite, {big: 20_001, capped: 20_000}))

    refused_big, refused_unknown, admitted = [
        await send_and_wait(suite, seller_send(seller, creator)) for creator in (big, unknown, capped)
    ]
    for refused in (refused_big, refused_unknown):
        assert (refused.type, refused.stage, refused.reason) == ("MessageRejected", "quota", "CREATOR_NOT_ELIGIBLE")
    assert "20,001" in refused_big.detail and "unknown" in refused_unknown.detail
    assert (admitted.type, admitted.quota_charged) == ("MessageDelivered", True)

    await report_gmv(suite, seller, "2000.01", at=utcnow() + timedelta(weeks=1))  # T2: no cap from next week
    next_week = utcnow() + timedelta(weeks=1)
    for creator in (big, unknown):
        delivered = await send_and_wait(suite, seller_send(seller, creator, at=next_week))
        assert (delivered.type, delivered.quota_charged) == ("MessageDelivered", True)


async def test_a_creator_is_charged_once_a_week_whatever_is_sent(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    await asyncio.gather(report_gmv(suite, seller, "10"), report_profiles(suite, {creator: 100}))
    now = utcnow()
    kinds = (MessageKind.PRODUCT_CARD, MessageKind.TEXT, MessageKind.TARGET_COLLABORATION)
    outcomes = [await send_and_wait(suite, seller_send(seller, creator, at=now, kind=kind)) for kind in kinds]
    assert [o.quota_charged for o in outcomes] == [True, False, False]

    charges = await suite.observer.wait_for(QUOTA_EVENTS, lambda m: m.seller_id == seller)
    charged = charges[0]
    assert (charged.command_id, charged.creator_id, charged.source, charged.used, charged.limit) == (
        outcomes[0].command_id, creator, ChargeSource.WEEKLY, 1, 50,
    )
    assert charged.week_start == POLICY.week_of(now).start
    assert charged.week_start.isoformat().startswith(POLICY.week_of(now).key + "T00:00:00-0")  # local Sunday 00:00

    next_week = await send_and_wait(suite, seller_send(seller, creator, at=now + timedelta(weeks=1)))
    assert next_week.quota_charged is True  # a new week charges again
    charges = await suite.observer.wait_for(QUOTA_EVENTS, lambda m: m.seller_id == seller, count=2)
    assert charges[1].week_start == POLICY.week_of(now + timedelta(weeks=1)).start


async def test_connected_creators_are_never_charged(suite: Suite) -> None:
    """Connected by its own message, by accepting a target collaboration, or as upstream
    reports; none has a known profile, which would refuse an unconnected creator."""
    seller = unique("s")
    by_message, by_collaboration, by_showcase, stranger = (unique(p) for p in ("msg", "collab", "showcase", "stranger"))
    store = quota_store(suite)
    await suite.publish(COLLABORATION_EVENTS, TargetCollaborationAccepted(
        event_id=new_event_id(), occurred_at=utcnow(), command_id=unique("cmd"), card_id=unique("card"),
        seller_id=seller, creator_id=by_collaboration,
    ))
    await suite.publish(DIRECTORY_EVENTS, CreatorConnected(
        event_id=new_event_id(), occurred_at=utcnow(), seller_id=seller, creator_id=by_showcase, via=ConnectionVia.SHOWCASE,
    ))
    assert (await send_and_wait(suite, creator_send(seller, by_message))).quota_charged is False
    for creator in (by_collaboration, by_showcase):
        await wait_until(lambda c=creator: store.is_connected(seller, c), f"{creator} to be connected")

    for creator in (by_message, by_collaboration, by_showcase):
        for kind in (MessageKind.TEXT, MessageKind.PRODUCT_CARD):
            delivered = await send_and_wait(suite, seller_send(seller, creator, kind=kind))
            assert (delivered.type, delivered.quota_charged) == ("MessageDelivered", False)
    admitted = suite.observer.messages(SEND_ADMITTED, lambda m: m.send.seller_id == seller and m.send.sender == "seller")
    assert {m.connected for m in admitted} == {True}
    assert (await send_and_wait(suite, seller_send(seller, stranger))).reason == "CREATOR_NOT_ELIGIBLE"
    assert not suite.observer.messages(QUOTA_EVENTS, lambda m: m.seller_id == seller)


async def test_a_sample_review_is_a_reply_never_charged_nor_capped(suite: Suite) -> None:
    seller, creator, stranger = unique("s"), unique("c"), unique("stranger")
    await report_profiles(suite, {creator: 10})
    for command in [seller_send(seller, creator) for _ in range(5)]:
        await suite.publish(SEND_REQUESTED, command)
    capped = await send_and_wait(suite, seller_send(seller, creator))
    assert capped.reason == "REPLY_REQUIRED"
    for who in (creator, stranger):  # capped conversation; unknown, unconnected creator
        review = await send_and_wait(suite, seller_send(seller, who, kind=MessageKind.SAMPLE_REVIEW))
        assert (review.type, review.kind, review.quota_charged) == ("MessageDelivered", "sample_review", False)
    assert len(suite.observer.messages(QUOTA_EVENTS, lambda m: m.seller_id == seller)) == 1


async def test_a_redelivered_send_is_replayed_never_charged_twice(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    await report_profiles(suite, {creator: 10})
    command = seller_send(seller, creator)
    for _ in range(3):
        await suite.publish(SEND_REQUESTED, command)
    marker = await send_and_wait(suite, seller_send(seller, creator))  # same partition: after all three
    assert marker.quota_charged is False

    admitted = [o.value for o in suite.observer.records[SEND_ADMITTED] if o.message and o.message.command_id == command.command_id]
    charged = [o.value for o in suite.observer.records[QUOTA_EVENTS] if o.message and o.message.seller_id == seller]
    assert len(admitted) == 3 and len(set(admitted)) == 1  # the stored decision, republished byte for byte
    assert len(charged) == 3 and len(set(charged)) == 1
    assert await suite.runtimes["quota"].db["charges"].count_documents({"seller_id": seller}) == 1
    store, week = quota_store(suite), POLICY.week_of(command.occurred_at)
    assert await store.units_used(seller, week.key) + await store.units_used(seller, STARTER_POOL) == 1
