"""Collaboration-card rules without I/O: ids, card text, the card's messages, who may
respond or review, and the status each card derives from its facts (R18)."""

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from im_contracts import (
    CardDelivered,
    CardRejected,
    EntryPoint,
    MessageDelivered,
    MessageKind,
    MessageRejected,
    ReasonCode,
    RejectionStage,
    SampleDecision,
    SampleRequestApproved,
    SampleRequestRejected,
    SampleReviewFailure,
    Sender,
    TargetCollaborationAccepted,
    TargetCollaborationDeclined,
    TargetCollaborationResponse,
)
from im_contracts.base import MAX_ID_LENGTH, MAX_TEXT_LENGTH
from services.collaboration_card import domain
from services.collaboration_card.domain import CardStatus, ResponseRefusal, Stamp
from tests.contracts.examples import AT, EXAMPLES, PLAN, PRODUCT, with_changes

PRODUCT_CARD = EXAMPLES["SendProductCard"]
TARGET = EXAMPLES["SendTargetCollaboration"]
SAMPLE = EXAMPLES["RequestSample"]
RESPOND = EXAMPLES["RespondToTargetCollaboration"]
REVIEW = EXAMPLES["ReviewSampleRequest"]
STAMP = Stamp(event_id="evt-9", at=AT)

ids = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=MAX_ID_LENGTH)


def delivered(message, message_id: str = "msg-7") -> MessageDelivered:
    return MessageDelivered(
        event_id="evt-d",
        occurred_at=AT,
        command_id=message.command_id,
        message_id=message_id,
        conversation_id=f"{message.seller_id}:{message.creator_id}",
        seq=1,
        seller_id=message.seller_id,
        creator_id=message.creator_id,
        sender=message.sender,
        kind=message.kind,
        text=message.text,
        card_id=message.card_id,
        entry_point=message.entry_point,
        sent_at=message.occurred_at,
        quota_charged=False,
    )


def rejected(message, reason: ReasonCode = ReasonCode.BLOCKED_BY_SELLER) -> MessageRejected:
    return MessageRejected(
        event_id="evt-r",
        occurred_at=AT,
        command_id=message.command_id,
        seller_id=message.seller_id,
        creator_id=message.creator_id,
        sender=message.sender,
        kind=message.kind,
        card_id=message.card_id,
        stage=RejectionStage.MODERATION,
        reason=reason,
        detail="refused",
    )


def sent(command) -> tuple[dict[str, Any], Any]:
    card = domain.new_card(command)
    return card, domain.card_message(command, card)


def with_outcome(card: dict[str, Any], event) -> dict[str, Any]:
    """The card after the store recorded its message outcome."""
    return {**card, "deliveries": {**card["deliveries"], str(event.kind): domain.delivery_facts(event)}}


def delivered_target() -> dict[str, Any]:
    card, message = sent(TARGET)
    return with_outcome(card, delivered(message))


def rejected_target() -> dict[str, Any]:
    card, message = sent(TARGET)
    return with_outcome(card, rejected(message))


# --- ids ---------------------------------------------------------------------


def test_card_id_is_derived_from_the_command_id() -> None:
    assert domain.card_id_for("cmd-1") == domain.card_id_for("cmd-1")
    assert domain.card_id_for("cmd-1") != domain.card_id_for("cmd-2")
    assert domain.new_card(PRODUCT_CARD)["_id"] == domain.card_id_for(PRODUCT_CARD.command_id)


def test_derived_command_id_reads_naturally_when_it_fits() -> None:
    assert domain.derived_command_id("cmd-1", "card") == "cmd-1:card"


@given(ids, st.sampled_from([domain.CARD_MESSAGE, domain.REVIEW_MESSAGE]))
def test_derived_command_id_is_a_valid_command_id_and_stable(command_id: str, purpose: str) -> None:
    derived = domain.derived_command_id(command_id, purpose)
    assert 1 <= len(derived) <= MAX_ID_LENGTH
    assert derived.endswith(f":{purpose}")
    assert derived == domain.derived_command_id(command_id, purpose)


def test_derived_command_ids_of_long_command_ids_stay_distinct() -> None:
    first, second = "a" * 127 + "1", "a" * 127 + "2"
    assert domain.derived_command_id(first, "card") != domain.derived_command_id(second, "card")


# --- text --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "shown"), [("0.15", "15%"), ("0.2", "20%"), ("0.125", "12.5%"), ("0", "0%"), ("1", "100%"), ("1.00", "100%")]
)
def test_commission_rate_is_shown_as_a_percentage(rate: str, shown: str) -> None:
    assert domain.percent(Decimal(rate)) == shown


@given(st.decimals(min_value=0, max_value=1, allow_nan=False, allow_infinity=False, places=6))
def test_percentage_is_the_rate_times_a_hundred(rate: Decimal) -> None:
    shown = domain.percent(rate)
    assert Decimal(shown.removesuffix("%")) == rate * 100


def test_product_card_text_shows_the_snapshot() -> None:
    text = domain.product_card_text(PRODUCT)
    assert "Blender 3000" in text and "49.90 USD" in text and "15%" in text and "prod-9" in text


def test_target_collaboration_text_shows_the_plan() -> None:
    text = domain.target_collaboration_text(PLAN)
    assert "Spring launch" in text and "20%" in text and "prod-9, prod-10" in text
    assert "Valid until: 2026-03-01 00:00 UTC" in text


@given(st.lists(st.text(min_size=1, max_size=MAX_ID_LENGTH), min_size=1, max_size=60))
def test_card_text_always_fits_a_message(product_ids: list[str]) -> None:
    text = domain.target_collaboration_text(with_changes(PLAN, product_ids=product_ids))
    assert 1 <= len(text) <= MAX_TEXT_LENGTH
    assert text == text.strip()


def test_clipped_text_ends_with_an_ellipsis() -> None:
    assert domain.fit_text("x" * 5000) == "x" * (MAX_TEXT_LENGTH - 1) + "…"


def test_sample_texts_name_the_product_quantity_note_and_reason() -> None:
    sample = domain.new_card(SAMPLE)["sample"]
    assert domain.sample_request_text(sample) == "Sample request: 2 × Blender 3000 (product prod-9)\nNote: For a video"
    untitled = {**sample, "product_title": None, "note": None}
    assert domain.sample_request_text(untitled) == "Sample request: 2 × product prod-9 (product prod-9)"
    assert domain.sample_review_text(sample, SampleDecision.APPROVE, None) == "Sample request approved: 2 × Blender 3000"
    assert domain.sample_review_text(sample, SampleDecision.REJECT, "Out of stock") == (
        "Sample request declined: Blender 3000\nReason: Out of stock"
    )


# --- cards and their messages ------------------------------------------------


@pytest.mark.parametrize(
    ("command", "kind", "sender", "entry_point"),
    [
        (PRODUCT_CARD, MessageKind.PRODUCT_CARD, Sender.SELLER, EntryPoint.API),
        (TARGET, MessageKind.TARGET_COLLABORATION, Sender.SELLER, EntryPoint.TARGET_COLLABORATION),
        (SAMPLE, MessageKind.SAMPLE_REQUEST, Sender.CREATOR, EntryPoint.SAMPLE_REQUEST),
    ],
)
def test_a_card_is_sent_as_a_message_of_its_kind(command, kind, sender, entry_point) -> None:
    card, message = sent(command)
    assert (card["kind"], card["command_id"], card["created_at"]) == (kind, command.command_id, command.occurred_at)
    assert (message.kind, message.sender, message.entry_point) == (kind, sender, entry_point)
    assert (message.card_id, message.seller_id, message.creator_id) == (card["_id"], command.seller_id, command.creator_id)
    assert message.command_id == "cmd-1:card"
    assert message.occurred_at == command.occurred_at  # quota's week is the command's (R10)
    assert (card["deliveries"], card["response"], card["review"]) == ({}, None, None)
    assert domain.card_status(card) is CardStatus.PENDING


def test_a_redelivered_command_builds_the_identical_card_and_message() -> None:
    assert sent(PRODUCT_CARD) == sent(PRODUCT_CARD)


def test_card_snapshots_are_stored_in_wire_form() -> None:
    assert domain.new_card(PRODUCT_CARD)["product"]["price"] == "49.90"
    assert domain.new_card(TARGET)["plan"]["product_ids"] == ["prod-9", "prod-10"]
    assert domain.new_card(SAMPLE)["sample"] == {
        "product_id": "prod-9",
        "product_title": "Blender 3000",
        "quantity": 2,
        "note": "For a video",
    }


def test_sample_requested_names_the_card_as_the_sample_request() -> None:
    card = domain.new_card(SAMPLE)
    event = domain.sample_requested(card, STAMP)
    assert (event.sample_request_id, event.command_id, event.quantity, event.note) == (
        card["_id"],
        "cmd-1",
        2,
        "For a video",
    )


def test_review_message_is_a_seller_reply_about_the_sample_card() -> None:
    card = domain.new_card(SAMPLE)
    message = domain.review_message(card, with_changes(REVIEW, command_id="review-1"))
    assert (message.kind, message.sender, message.entry_point) == (
        MessageKind.SAMPLE_REVIEW,
        Sender.SELLER,
        EntryPoint.SAMPLE_REQUEST,
    )
    assert (message.card_id, message.command_id) == (card["_id"], "review-1:review")


# --- message outcomes --------------------------------------------------------


def test_only_card_messages_are_followed() -> None:
    card, message = sent(PRODUCT_CARD)
    assert domain.is_card_message(delivered(message))
    assert not domain.is_card_message(EXAMPLES["MessageDelivered"])


def test_an_outcome_is_the_cards_own_only_for_the_message_it_sent() -> None:
    card, message = sent(PRODUCT_CARD)
    assert domain.is_own_message(card, delivered(message))
    stray = with_changes(message, command_id="someone-else")
    assert not domain.is_own_message(card, delivered(stray))
    wrong_kind = with_changes(message, kind=MessageKind.TARGET_COLLABORATION)
    assert not domain.is_own_message(card, delivered(wrong_kind))


def test_a_review_message_is_the_sample_cards_own_once_the_seller_reviewed() -> None:
    card = domain.new_card(SAMPLE)
    review = with_changes(REVIEW, command_id="review-1", sample_request_id=card["_id"])
    message = domain.review_message(card, review)
    assert not domain.is_own_message(card, delivered(message))
    reviewed = {**card, "review": domain.seller_review_facts(review)}
    assert domain.is_own_message(reviewed, delivered(message))


def test_card_outcome_answers_the_command_that_created_the_card() -> None:
    card, message = sent(PRODUCT_CARD)
    event = domain.card_outcome_event(card, delivered(message), STAMP)
    assert isinstance(event, CardDelivered)
    assert (event.command_id, event.card_id, event.kind, event.message_id) == (
        "cmd-1",
        card["_id"],
        MessageKind.PRODUCT_CARD,
        "msg-7",
    )
    refused = domain.card_outcome_event(card, rejected(message, ReasonCode.QUOTA_EXHAUSTED), STAMP)
    assert isinstance(refused, CardRejected)
    assert (refused.reason, refused.detail) == (ReasonCode.QUOTA_EXHAUSTED, "refused")


def test_review_message_outcome_answers_the_review_command() -> None:
    card = domain.new_card(SAMPLE)
    review = with_changes(REVIEW, command_id="review-1", sample_request_id=card["_id"])
    reviewed = {**card, "review": domain.seller_review_facts(review)}
    event = domain.card_outcome_event(reviewed, delivered(domain.review_message(card, review)), STAMP)
    assert (event.command_id, event.kind) == ("review-1", MessageKind.SAMPLE_REVIEW)


# --- status ------------------------------------------------------------------


def test_outreach_card_status_follows_its_message() -> None:
    card, message = sent(PRODUCT_CARD)
    assert domain.card_status(with_outcome(card, delivered(message))) is CardStatus.DELIVERED
    assert domain.card_status(with_outcome(card, rejected(message))) is CardStatus.REJECTED


@pytest.mark.parametrize(
    ("response", "status"),
    [(TargetCollaborationResponse.ACCEPT, CardStatus.ACCEPTED), (TargetCollaborationResponse.DECLINE, CardStatus.DECLINED)],
)
def test_a_delivered_target_collaboration_ends_accepted_or_declined(response, status) -> None:
    card = delivered_target()
    answered = {**card, "response": domain.response_facts(with_changes(RESPOND, response=response))}
    assert domain.card_status(answered) is status


def test_sample_request_status_is_its_review() -> None:
    card, message = sent(SAMPLE)
    card = with_outcome(card, delivered(message))
    assert domain.card_status(card) is CardStatus.PENDING
    approve = domain.seller_review_facts(REVIEW)
    reject = domain.seller_review_facts(with_changes(REVIEW, decision=SampleDecision.REJECT))
    assert domain.card_status({**card, "review": approve}) is CardStatus.APPROVED
    assert domain.card_status({**card, "review": reject}) is CardStatus.REJECTED


def test_a_sample_request_refused_by_the_pipeline_is_closed_as_rejected() -> None:
    card, message = sent(SAMPLE)
    refusal = rejected(message)
    closed = {**with_outcome(card, refusal), "review": domain.closing_review_facts(refusal)}
    assert domain.card_status(closed) is CardStatus.REJECTED
    view = domain.card_view(closed)
    assert (view["status"], view["reason"], view["decision"]) == ("rejected", "BLOCKED_BY_SELLER", None)


# --- who may respond, who may review -----------------------------------------


def respond(card: dict[str, Any], **changes: Any):
    return with_changes(RESPOND, card_id=card["_id"], **changes)


def test_the_addressed_creator_may_respond_to_a_delivered_target_collaboration() -> None:
    card = delivered_target()
    assert domain.response_refusal(card, respond(card)) is None


@pytest.mark.parametrize(
    ("card", "changes", "refusal"),
    [
        (None, {}, ResponseRefusal.UNKNOWN_CARD),
        (domain.new_card(PRODUCT_CARD), {}, ResponseRefusal.UNKNOWN_CARD),
        (delivered_target(), {"seller_id": "other_seller"}, ResponseRefusal.UNKNOWN_CARD),
        (delivered_target(), {"creator_id": "other-creator"}, ResponseRefusal.NOT_ADDRESSEE),
        (domain.new_card(TARGET), {}, ResponseRefusal.NOT_DELIVERED),
        (rejected_target(), {}, ResponseRefusal.NOT_DELIVERED),
    ],
)
def test_other_responses_are_refused(card, changes, refusal) -> None:
    command = with_changes(RESPOND, **changes) if card is None else respond(card, **changes)
    assert domain.response_refusal(card, command) is refusal


@pytest.mark.parametrize(
    ("response", "model"),
    [(TargetCollaborationResponse.ACCEPT, TargetCollaborationAccepted), (TargetCollaborationResponse.DECLINE, TargetCollaborationDeclined)],
)
def test_response_event_names_the_card_and_both_parties(response, model) -> None:
    card = delivered_target()
    event = domain.response_event(card, respond(card, response=response), STAMP)
    assert isinstance(event, model)
    assert (event.card_id, event.seller_id, event.creator_id) == (card["_id"], card["seller_id"], card["creator_id"])


def test_only_the_owning_seller_may_review_a_known_sample_request() -> None:
    card = domain.new_card(SAMPLE)
    review = with_changes(REVIEW, sample_request_id=card["_id"])
    assert domain.review_refusal(card, review) is None
    assert domain.review_refusal(None, review) is SampleReviewFailure.NOT_FOUND
    assert domain.review_refusal(domain.new_card(PRODUCT_CARD), review) is SampleReviewFailure.NOT_FOUND
    assert domain.review_refusal(card, with_changes(review, seller_id="other_seller")) is SampleReviewFailure.NOT_OWNER


def test_review_events_carry_the_decision() -> None:
    card = domain.new_card(SAMPLE)
    approved = domain.review_event(card, REVIEW, STAMP)
    assert isinstance(approved, SampleRequestApproved) and approved.creator_id == card["creator_id"]
    refused = domain.review_event(card, with_changes(REVIEW, decision=SampleDecision.REJECT, reason="Out of stock"), STAMP)
    assert isinstance(refused, SampleRequestRejected) and refused.reason == "Out of stock"


@pytest.mark.parametrize(
    ("failure", "creator_shown"),
    [
        (SampleReviewFailure.NOT_FOUND, False),
        (SampleReviewFailure.NOT_OWNER, False),
        (SampleReviewFailure.ALREADY_REVIEWED, True),
    ],
)
def test_a_failed_review_names_the_creator_only_to_the_owner(failure, creator_shown) -> None:
    card = None if failure is SampleReviewFailure.NOT_FOUND else domain.new_card(SAMPLE)
    event = domain.review_failed(card, REVIEW, failure, STAMP)
    assert event.reason is failure and event.seller_id == REVIEW.seller_id
    assert (event.creator_id is not None) is creator_shown


# --- read model --------------------------------------------------------------


def test_product_card_view() -> None:
    card, message = sent(PRODUCT_CARD)
    view = domain.card_view(with_outcome(card, delivered(message)))
    assert view == {
        "card_id": card["_id"],
        "kind": "product_card",
        "seller_id": PRODUCT_CARD.seller_id,
        "creator_id": PRODUCT_CARD.creator_id,
        "status": "delivered",
        "created_at": AT.isoformat(),
        "message_id": "msg-7",
        "reason": None,
        "detail": None,
        "product": PRODUCT.model_dump(mode="json"),
    }


def test_target_collaboration_view_shows_the_plan_and_response() -> None:
    card = delivered_target()
    answered = {**card, "response": domain.response_facts(respond(card))}
    view = domain.card_view(answered)
    assert (view["status"], view["response"], view["responded_at"]) == ("accepted", "accept", AT.isoformat())
    assert view["plan"]["plan_id"] == "plan-3"


def test_sample_request_view_shows_the_sample_and_the_decision() -> None:
    card, message = sent(SAMPLE)
    review = with_changes(REVIEW, decision=SampleDecision.REJECT, reason="Out of stock", command_id="review-1")
    reviewed = {**with_outcome(card, delivered(message)), "review": domain.seller_review_facts(review)}
    reviewed = with_outcome(reviewed, delivered(domain.review_message(card, review), message_id="msg-8"))
    view = domain.card_view(reviewed)
    assert (view["sample_request_id"], view["quantity"], view["note"], view["status"]) == (
        card["_id"],
        2,
        "For a video",
        "rejected",
    )
    assert view["message_id"] == "msg-7"
    assert view["decision"] == {
        "decision": "reject",
        "reason": "Out of stock",
        "decided_at": AT.isoformat(),
        "message_id": "msg-8",
        "message_rejected_reason": None,
    }
