"""How moderation commands change blocks and seller access (R11–R13), as pure functions."""

from datetime import timedelta

import pytest

from im_contracts import (
    BlockCreator,
    BlockSeller,
    CreatorBlocked,
    CreatorUnblocked,
    SellerAccessChanged,
    SellerAccessStatus,
    SellerBlocked,
    SellerUnblocked,
    SetSellerAccess,
    UnblockCreator,
    UnblockSeller,
)
from tests.contracts.examples import AT, CREATOR_ID, SELLER_ID

from services.moderation.domain import (
    BLOCKED,
    UNBLOCKED,
    Intent,
    KnownState,
    ScreeningFacts,
    Verdict,
    change_of,
    creator_blocks_seller,
    event_for,
    intent_of,
    judge,
    seller_access,
    seller_blocks_creator,
)
from services.moderation.known import KnownSubjects

PAIR = {"seller_id": SELLER_ID, "creator_id": CREATOR_ID}
COMMAND = {"command_id": "cmd-7", "occurred_at": AT}
BY_SELLER = seller_blocks_creator(SELLER_ID, CREATOR_ID)
BY_CREATOR = creator_blocks_seller(SELLER_ID, CREATOR_ID)
ACCESS = seller_access(SELLER_ID)

COMMANDS = [
    (BlockCreator(**COMMAND, **PAIR), Intent(BY_SELLER, BLOCKED), CreatorBlocked),
    (UnblockCreator(**COMMAND, **PAIR), Intent(BY_SELLER, UNBLOCKED), CreatorUnblocked),
    (BlockSeller(**COMMAND, **PAIR), Intent(BY_CREATOR, BLOCKED), SellerBlocked),
    (UnblockSeller(**COMMAND, **PAIR), Intent(BY_CREATOR, UNBLOCKED), SellerUnblocked),
    (SetSellerAccess(**COMMAND, seller_id=SELLER_ID, status="shop_closed", reason="closed"), Intent(ACCESS, "shop_closed"), SellerAccessChanged),
]


@pytest.mark.parametrize(("command", "intent", "event_type"), COMMANDS)
def test_each_command_asks_for_one_state_and_names_its_event(command, intent, event_type) -> None:
    assert intent_of(command) == intent
    event = event_for(command, "evt-9")
    assert type(event) is event_type
    assert (event.event_id, event.command_id, event.seller_id) == ("evt-9", "cmd-7", SELLER_ID)
    assert event.occurred_at == command.occurred_at  # ordered by the command's time, not a clock


def test_access_event_carries_status_and_reason() -> None:
    event = event_for(COMMANDS[-1][0], "evt-9")
    assert (event.status, event.reason) == (SellerAccessStatus.SHOP_CLOSED, "closed")


def test_subjects_are_distinct_per_direction_and_pair() -> None:
    keys = {BY_SELLER.key, BY_CREATOR.key, ACCESS.key, seller_blocks_creator(SELLER_ID, "other").key}
    assert len(keys) == 4


def test_untouched_subjects_start_unblocked_and_active() -> None:
    assert (BY_SELLER.initial_state, BY_CREATOR.initial_state, ACCESS.initial_state) == (UNBLOCKED, UNBLOCKED, "active")


EARLIER, LATER = AT - timedelta(seconds=1), AT + timedelta(seconds=1)


@pytest.mark.parametrize(
    ("subject", "current", "wanted", "expected"),
    [
        # first command on a subject
        (BY_SELLER, None, BLOCKED, Verdict.CHANGED),
        (BY_SELLER, None, UNBLOCKED, Verdict.CONFIRMED),  # unblocking a stranger changes nothing
        (ACCESS, None, "active", Verdict.CONFIRMED),
        (ACCESS, None, "deactivated", Verdict.CHANGED),
        # newer commands
        (BY_CREATOR, KnownState(BLOCKED, EARLIER), UNBLOCKED, Verdict.CHANGED),
        (BY_CREATOR, KnownState(BLOCKED, EARLIER), BLOCKED, Verdict.CONFIRMED),  # a repeat publishes nothing
        (ACCESS, KnownState("shop_closed", EARLIER), "deactivated", Verdict.CHANGED),
        (ACCESS, KnownState("shop_closed", EARLIER), "active", Verdict.CHANGED),
        # same instant: the command handled last wins
        (BY_SELLER, KnownState(BLOCKED, AT), UNBLOCKED, Verdict.CHANGED),
        # older than what the subject reflects: a late command undoes nothing
        (BY_SELLER, KnownState(BLOCKED, LATER), UNBLOCKED, Verdict.STALE),
        (BY_SELLER, KnownState(BLOCKED, LATER), BLOCKED, Verdict.STALE),
        (ACCESS, KnownState("active", LATER), "shop_closed", Verdict.STALE),
    ],
)
def test_verdicts(subject, current, wanted, expected) -> None:
    assert judge(subject, current, wanted, AT) is expected


@pytest.mark.parametrize(("command", "intent", "event_type"), COMMANDS)
def test_each_event_names_the_change_its_command_made(command, intent, event_type) -> None:
    assert change_of(event_for(command, "evt-9")) == (intent.subject, KnownState(intent.state, command.occurred_at))


def test_what_an_instance_knows_takes_the_newer_change_whatever_order_events_arrive_in() -> None:
    known = KnownSubjects()
    assert known.screening_facts_each([(SELLER_ID, CREATOR_ID)]) == [ScreeningFacts()]  # untouched: the initial states
    assert known.learn(BY_SELLER.key, KnownState(BLOCKED, LATER))
    assert known.learn(BY_SELLER.key, KnownState(UNBLOCKED, EARLIER))  # older: known, ignored
    assert known.learn(ACCESS.key, KnownState("shop_closed", AT))
    assert known.screening_facts_each([(SELLER_ID, CREATOR_ID), ("other", CREATOR_ID)]) == [
        ScreeningFacts(seller_access=SellerAccessStatus.SHOP_CLOSED, seller_blocked_creator=True),
        ScreeningFacts(),
    ]


def test_two_states_at_the_same_moment_are_left_to_the_store() -> None:
    known = KnownSubjects()
    known.set(BY_CREATOR.key, KnownState(BLOCKED, AT))
    assert known.learn(BY_CREATOR.key, KnownState(BLOCKED, AT))  # the same change again
    assert not known.learn(BY_CREATOR.key, KnownState(UNBLOCKED, AT))
    assert known.state_of(BY_CREATOR) == BLOCKED  # unchanged until the store says
