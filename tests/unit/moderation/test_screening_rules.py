"""Screening rules R11–R14 and their order (R20), as pure functions."""

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from im_contracts import MessageKind, ReasonCode, SellerAccessStatus, SendMessage, Sender
from tests.contracts.examples import AT, CREATOR_ID, SELLER_ID

from services.moderation.domain import (
    CREATOR_SEND_RULES,
    SELLER_SEND_RULES,
    TEXT_LENGTH_RULE_ID,
    ContentPolicy,
    ScreeningFacts,
    access_rule,
    blocked_by_creator_rule,
    blocked_by_seller_rule,
    content_rule,
    screen,
)

POLICY = ContentPolicy.from_mapping(
    {
        "banned_terms": [{"id": "payment", "terms": ["venmo"], "detail": "No outside payments."}],
        "patterns": [{"id": "email", "pattern": r"\S+@\S+\.\w+"}],
    }
)
CLEAN, BANNED = "Hi! Interested in our new blender?", "pay me on venmo"
REVOKED = SellerAccessStatus.SHOP_CLOSED


def send(sender: Sender, text: str = CLEAN, kind: MessageKind = MessageKind.TEXT) -> SendMessage:
    return SendMessage(
        command_id="cmd-1",
        occurred_at=AT,
        seller_id=SELLER_ID,
        creator_id=CREATOR_ID,
        sender=sender,
        text=text,
        kind=kind,
        card_id=None if kind is MessageKind.TEXT else "card-1",
    )


def with_raw_text(message: SendMessage, text: str) -> SendMessage:
    """A send whose text the contract would refuse (the handler builds these for R14)."""
    return message.model_copy(update={"text": text})


# --- each rule, and the rule order, as a table ----------------------------------

S, C = Sender.SELLER, Sender.CREATOR


@pytest.mark.parametrize(
    ("sender", "access", "seller_blocked", "creator_blocked", "text", "expected"),
    [
        # nothing fails: the send goes on to quota
        (S, "active", False, False, CLEAN, None),
        (C, "active", False, False, CLEAN, None),
        # one failing rule at a time
        (S, "shop_closed", False, False, CLEAN, ReasonCode.SELLER_ACCESS_REVOKED),
        (S, "deactivated", False, False, CLEAN, ReasonCode.SELLER_ACCESS_REVOKED),
        (C, "shop_closed", False, False, CLEAN, ReasonCode.SELLER_ACCESS_REVOKED),
        (C, "deactivated", False, False, CLEAN, ReasonCode.SELLER_ACCESS_REVOKED),
        (S, "active", True, False, CLEAN, ReasonCode.BLOCKED_BY_SELLER),
        (C, "active", True, False, CLEAN, ReasonCode.BLOCKED_BY_SELLER),
        (S, "active", False, True, CLEAN, ReasonCode.BLOCKED_BY_CREATOR),
        (S, "active", False, False, BANNED, ReasonCode.CONTENT_REJECTED),
        (C, "active", False, False, BANNED, ReasonCode.CONTENT_REJECTED),
        # a creator's own block is not a rule of creator sends (R20)
        (C, "active", False, True, CLEAN, None),
        (C, "active", False, True, BANNED, ReasonCode.CONTENT_REJECTED),
        # order: access before both blocks and content
        (S, "shop_closed", True, True, BANNED, ReasonCode.SELLER_ACCESS_REVOKED),
        (C, "deactivated", True, True, BANNED, ReasonCode.SELLER_ACCESS_REVOKED),
        # order: blocked by seller before blocked by creator and content
        (S, "active", True, True, BANNED, ReasonCode.BLOCKED_BY_SELLER),
        (C, "active", True, True, BANNED, ReasonCode.BLOCKED_BY_SELLER),
        # order: blocked by creator before content
        (S, "active", False, True, BANNED, ReasonCode.BLOCKED_BY_CREATOR),
    ],
)
def test_first_failing_rule_is_the_reason(sender, access, seller_blocked, creator_blocked, text, expected) -> None:
    facts = ScreeningFacts(SellerAccessStatus(access), seller_blocked, creator_blocked)
    refusal = screen(send(sender, text), facts, POLICY)
    assert (refusal.reason if refusal else None) == expected


def test_rule_order_is_r20() -> None:
    assert SELLER_SEND_RULES == (access_rule, blocked_by_seller_rule, blocked_by_creator_rule, content_rule)
    assert CREATOR_SEND_RULES == (access_rule, blocked_by_seller_rule, content_rule)


R20_ORDER = {
    S: ("access", "seller_blocked", "creator_blocked", "content"),
    C: ("access", "seller_blocked", "content"),
}
REASON_OF = {
    "access": ReasonCode.SELLER_ACCESS_REVOKED,
    "seller_blocked": ReasonCode.BLOCKED_BY_SELLER,
    "creator_blocked": ReasonCode.BLOCKED_BY_CREATOR,
    "content": ReasonCode.CONTENT_REJECTED,
}


@pytest.mark.parametrize("sender", [S, C])
@pytest.mark.parametrize(("access", "seller_blocked", "creator_blocked", "bad_text"), list(itertools.product(SellerAccessStatus, *[(False, True)] * 3)))
def test_every_combination_is_judged_in_r20_order(sender, access, seller_blocked, creator_blocked, bad_text) -> None:
    failing = {
        "access": access is not SellerAccessStatus.ACTIVE,
        "seller_blocked": seller_blocked,
        "creator_blocked": creator_blocked,
        "content": bad_text,
    }
    expected = next((REASON_OF[rule] for rule in R20_ORDER[sender] if failing[rule]), None)
    facts = ScreeningFacts(access, seller_blocked, creator_blocked)
    refusal = screen(send(sender, BANNED if bad_text else CLEAN), facts, POLICY)
    assert (refusal.reason if refusal else None) == expected


# --- details the sender sees --------------------------------------------------------


def test_creator_blocked_by_seller_gets_the_exact_sentence() -> None:
    refusal = screen(send(C), ScreeningFacts(seller_blocked_creator=True), POLICY)
    assert refusal.reason is ReasonCode.BLOCKED_BY_SELLER
    assert refusal.detail == "You cannot send messages to seller now as you are blocked by them."
    assert refusal.rule_id is None


def test_seller_who_blocked_the_creator_is_told_to_unblock_first() -> None:
    refusal = screen(send(S), ScreeningFacts(seller_blocked_creator=True), POLICY)
    assert refusal.reason is ReasonCode.BLOCKED_BY_SELLER
    assert "Unblock" in refusal.detail
    assert refusal.detail != "You cannot send messages to seller now as you are blocked by them."


def test_revoked_seller_and_its_creators_get_their_own_details() -> None:
    seller = screen(send(S), ScreeningFacts(seller_access=SellerAccessStatus.DEACTIVATED), POLICY)
    creator = screen(send(C), ScreeningFacts(seller_access=SellerAccessStatus.SHOP_CLOSED), POLICY)
    assert "deactivated" in seller.detail
    assert creator.detail == "This seller cannot receive messages right now."


def test_blocked_by_creator_detail() -> None:
    refusal = screen(send(S), ScreeningFacts(creator_blocked_seller=True), POLICY)
    assert (refusal.reason, refusal.rule_id) == (ReasonCode.BLOCKED_BY_CREATOR, None)
    assert "blocked you" in refusal.detail


# --- cards follow their sender ------------------------------------------------------

CARD_SENDERS = [
    (MessageKind.PRODUCT_CARD, S),
    (MessageKind.TARGET_COLLABORATION, S),
    (MessageKind.SAMPLE_REVIEW, S),  # the seller's reply to a sample request
    (MessageKind.SAMPLE_REQUEST, C),
]


@pytest.mark.parametrize(("kind", "sender"), CARD_SENDERS)
@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (ScreeningFacts(), None),
        (ScreeningFacts(seller_access=SellerAccessStatus.SHOP_CLOSED), ReasonCode.SELLER_ACCESS_REVOKED),
        (ScreeningFacts(seller_blocked_creator=True), ReasonCode.BLOCKED_BY_SELLER),
    ],
)
def test_cards_are_screened_by_the_same_rules(kind, sender, facts, expected) -> None:
    refusal = screen(send(sender, "Product card: Blender 3000", kind), facts, POLICY)
    assert (refusal.reason if refusal else None) == expected


@pytest.mark.parametrize(("kind", "sender"), CARD_SENDERS)
def test_card_text_is_content_checked(kind, sender) -> None:
    refusal = screen(send(sender, "Sample note: pay via Venmo", kind), ScreeningFacts(), POLICY)
    assert (refusal.reason, refusal.rule_id) == (ReasonCode.CONTENT_REJECTED, "payment")


@pytest.mark.parametrize(("kind", "sender", "expected"), [(k, s, ReasonCode.BLOCKED_BY_CREATOR if s is S else None) for k, s in CARD_SENDERS])
def test_creator_block_stops_seller_cards_but_not_sample_requests(kind, sender, expected) -> None:
    refusal = screen(send(sender, "card", kind), ScreeningFacts(creator_blocked_seller=True), POLICY)
    assert (refusal.reason if refusal else None) == expected


# --- content (R14) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rule_id"),
    [
        ("pay me on venmo", "payment"),
        ("Pay me on VENMO!", "payment"),
        ("venmo", "payment"),
        ("(venmo)", "payment"),
        ("venmoney is a brand", None),  # word-aware: part of another word is not the term
        ("write to bob@example.com", "email"),
        ("hello there", None),
    ],
)
def test_content_rules_refuse_with_their_id(text: str, rule_id: str | None) -> None:
    refusal = screen(send(S, text), ScreeningFacts(), POLICY)
    assert (refusal.rule_id if refusal else None) == rule_id
    if refusal:
        assert refusal.reason is ReasonCode.CONTENT_REJECTED


def test_rule_detail_is_shown_to_the_sender() -> None:
    assert screen(send(S, BANNED), ScreeningFacts(), POLICY).detail == "No outside payments."
    assert screen(send(S, "a@b.io"), ScreeningFacts(), POLICY).detail == "Your message contains content that is not allowed."


@pytest.mark.parametrize(
    ("text", "allowed"),
    [("x", True), ("x" * 2000, True), ("  " + "x" * 2000 + "\n ", True), ("", False), (" \t\n ", False), ("x" * 2001, False)],
)
def test_length_after_trimming(text: str, allowed: bool) -> None:
    refusal = content_rule(with_raw_text(send(C), text), ScreeningFacts(), ContentPolicy())
    assert refusal is None if allowed else (refusal.reason, refusal.rule_id) == (ReasonCode.CONTENT_REJECTED, TEXT_LENGTH_RULE_ID)


def test_length_comes_after_access_and_blocks() -> None:
    too_long = with_raw_text(send(S), "x" * 2001)
    assert screen(too_long, ScreeningFacts(creator_blocked_seller=True), POLICY).reason is ReasonCode.BLOCKED_BY_CREATOR
    assert screen(too_long, ScreeningFacts(), POLICY).detail.endswith("this one has 2,001.")


@given(text=st.text(max_size=2100))
def test_any_text_outside_bounds_is_refused_for_its_length(text: str) -> None:
    refusal = screen(with_raw_text(send(S), text), ScreeningFacts(), ContentPolicy())
    in_bounds = 1 <= len(text.strip()) <= 2000
    assert (refusal is None) if in_bounds else refusal.rule_id == TEXT_LENGTH_RULE_ID
