"""Every card kind lands in the one conversation, in the order it was sent (R1, R18)."""

import pytest

from im_contracts import MessageKind
from im_contracts.topics import COLLABORATION_COMMANDS
from tests.harness import Suite, unique
from tests.integration.collaboration_card.support import (
    card_outcome,
    conversation,
    make_reachable,
    product_card,
    review,
    sample_request,
    send,
    target_collaboration,
)

pytestmark = pytest.mark.integration


async def test_the_conversation_shows_every_card_in_order(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    await make_reachable(suite, seller, creator)
    # One conversation key: the three commands are handled, and their messages delivered, in order.
    product = await send(suite, product_card(seller, creator))
    target = await send(suite, target_collaboration(seller, creator))
    sample = await send(suite, sample_request(seller, creator))
    for card_id, kind in (
        (product, MessageKind.PRODUCT_CARD),
        (target, MessageKind.TARGET_COLLABORATION),
        (sample, MessageKind.SAMPLE_REQUEST),
    ):
        assert (await card_outcome(suite, card_id, kind)).type == "CardDelivered"
    await suite.publish(COLLABORATION_COMMANDS, review(seller, sample, "approve"))
    assert (await card_outcome(suite, sample, MessageKind.SAMPLE_REVIEW)).type == "CardDelivered"

    messages = await conversation(suite, seller, creator)
    assert [(m["seq"], m["kind"], m["sender"], m["card_id"]) for m in messages] == [
        (1, "product_card", "seller", product),
        (2, "target_collaboration", "seller", target),
        (3, "sample_request", "creator", sample),
        (4, "sample_review", "seller", sample),
    ]
