"""What moderation publishes for a refused send, and which broken bodies are content problems."""

import json

import pytest

from im_contracts import MessageKind, MessageRejected, ReasonCode, SendMessage, parse
from im_contracts.topics import SEND_REJECTED
from tests.contracts.examples import SEND

from services.moderation.domain import Refusal
from services.moderation.handlers import rejected, send_with_text_out_of_bounds

SEND_BODY = json.loads(SEND.model_dump_json())


def test_rejection_copies_the_send_and_names_the_rule() -> None:
    card = SendMessage.model_validate(
        {**SEND_BODY, "kind": "product_card", "card_id": "card-5", "bulk_id": "bulk-1"}
    )
    decision = rejected(card, Refusal(ReasonCode.CONTENT_REJECTED, "No outside payments.", "payment"))
    (record,) = decision.outgoing
    assert record.topic == SEND_REJECTED
    message = parse(SEND_REJECTED, record.value)
    assert isinstance(message, MessageRejected)
    assert (message.command_id, message.seller_id, message.creator_id, message.sender) == (
        card.command_id, card.seller_id, card.creator_id, card.sender,
    )
    assert (message.kind, message.card_id, message.bulk_id) == (MessageKind.PRODUCT_CARD, "card-5", "bulk-1")
    assert (message.stage, message.reason, message.detail, message.rule_id) == (
        "moderation", ReasonCode.CONTENT_REJECTED, "No outside payments.", "payment",
    )
    assert decision.outcome == "rejected:CONTENT_REJECTED"


@pytest.mark.parametrize("text", ["x" * 2001, "   ", ""])
def test_a_text_out_of_bounds_alone_is_a_content_problem(text: str) -> None:
    send = send_with_text_out_of_bounds({**SEND_BODY, "text": text})
    assert send is not None
    assert (send.text, send.command_id, send.seller_id) == (text, SEND.command_id, SEND.seller_id)


@pytest.mark.parametrize(
    "changes",
    [
        {"text": "fine"},  # the text is not the problem
        {"text": 42},
        {"text": "x" * 2001, "seller_id": "bad id!"},  # another fault as well: malformed
        {"text": "x" * 2001, "type": "BlockCreator"},
        {"text": "x" * 2001, "kind": "product_card"},  # card without card_id
    ],
)
def test_other_faults_stay_invalid_commands(changes: dict) -> None:
    assert send_with_text_out_of_bounds({**SEND_BODY, **changes}) is None


@pytest.mark.parametrize("missing", ["text", "type"])
def test_a_body_missing_a_field_is_malformed(missing: str) -> None:
    body = {k: v for k, v in SEND_BODY.items() if k != missing} | ({"text": "x" * 2001} if missing == "type" else {})
    assert send_with_text_out_of_bounds(body) is None
