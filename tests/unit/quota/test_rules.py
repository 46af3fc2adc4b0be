"""How a seller's send is judged, rule by rule and in R20's order (R3-R9, R18)."""

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from im_contracts import ChargeSource, MessageKind, ReasonCode

from services.quota.domain import (
    Admit,
    ChargeFirst,
    Refuse,
    Standing,
    allowance,
    judge_seller_send,
    quota_exhausted,
    remaining_allowance,
)
from tests.unit.quota.builders import SMALL

T0, T1, T2, T3 = SMALL.tiers
WEEK = SMALL.week_of(datetime(2026, 1, 7, tzinfo=UTC))
FRESH = Standing(connected=False, reply_lifted=False, seller_messages=0, creator_followers=1_000, tier=T1, tier_frozen=False, charged_this_week=False)


def judge(kind: MessageKind = MessageKind.TEXT, **changes: object) -> Admit | Refuse | ChargeFirst:
    return judge_seller_send(kind, replace(FRESH, **changes), SMALL)


def reason(verdict: object) -> ReasonCode | None:
    return verdict.reason if isinstance(verdict, Refuse) else None


def test_a_first_message_to_an_eligible_unconnected_creator_is_charged() -> None:
    assert judge() == ChargeFirst(T1)


@pytest.mark.parametrize("kind", [MessageKind.TEXT, MessageKind.PRODUCT_CARD, MessageKind.TARGET_COLLABORATION])
def test_messages_and_cards_share_the_quota(kind: MessageKind) -> None:
    assert judge(kind) == ChargeFirst(T1)  # R3


def test_reply_cap_allows_five_seller_messages_before_a_reply() -> None:
    assert judge(seller_messages=4, charged_this_week=True) == Admit()
    refused = judge(seller_messages=5, charged_this_week=True)
    assert reason(refused) == ReasonCode.REPLY_REQUIRED and "5 messages" in refused.detail


def test_a_creator_message_lifts_the_reply_cap_for_good() -> None:
    assert judge(seller_messages=40, reply_lifted=True, connected=True) == Admit()


def test_reply_cap_applies_to_connected_creators_and_every_kind() -> None:
    assert reason(judge(seller_messages=5, connected=True)) == ReasonCode.REPLY_REQUIRED
    assert reason(judge(MessageKind.PRODUCT_CARD, seller_messages=5)) == ReasonCode.REPLY_REQUIRED


def test_reply_cap_is_judged_before_the_follower_cap_and_the_quota() -> None:
    assert reason(judge(seller_messages=5, creator_followers=None)) == ReasonCode.REPLY_REQUIRED


def test_connected_creators_are_never_charged_nor_follower_capped() -> None:
    assert judge(connected=True) == Admit()
    assert judge(connected=True, creator_followers=None) == Admit()
    assert judge(connected=True, tier=T0, creator_followers=5_000_000) == Admit()


@pytest.mark.parametrize("followers", [20_001, 3_000_000, None])
def test_follower_cap_refuses_big_or_unknown_creators(followers: int | None) -> None:
    refused = judge(creator_followers=followers)
    assert reason(refused) == ReasonCode.CREATOR_NOT_ELIGIBLE
    assert "20,000" in refused.detail and "T1" in refused.detail


def test_follower_cap_is_inclusive_and_absent_on_high_tiers() -> None:
    assert judge(creator_followers=20_000) == ChargeFirst(T1)
    assert judge(tier=T2, creator_followers=None) == ChargeFirst(T2)
    assert judge(tier=T3, creator_followers=90_000_000) == ChargeFirst(T3)


def test_follower_cap_is_judged_before_the_quota() -> None:
    assert reason(judge(creator_followers=None, charged_this_week=True)) == ReasonCode.CREATOR_NOT_ELIGIBLE


def test_a_creator_charged_this_week_costs_nothing_more() -> None:
    assert judge(charged_this_week=True) == Admit()  # R4


def test_sample_review_is_a_reply_never_charged_nor_capped() -> None:
    assert judge(MessageKind.SAMPLE_REVIEW, seller_messages=99, creator_followers=None, tier=T0) == Admit()


def test_allowance_of_a_tier() -> None:
    assert allowance(T0, WEEK, SMALL).source is ChargeSource.STARTER_PACK
    assert (allowance(T0, WEEK, SMALL).pool, allowance(T0, WEEK, SMALL).limit) == ("starter", 3)
    assert (allowance(T1, WEEK, SMALL).pool, allowance(T1, WEEK, SMALL).limit) == (WEEK.key, 2)
    assert allowance(T3, WEEK, SMALL).limit is None


def test_exhausted_quota_says_what_ran_out() -> None:
    weekly = quota_exhausted(T1, WEEK, SMALL)
    assert weekly.reason == ReasonCode.QUOTA_EXHAUSTED
    assert "2 new creators this week" in weekly.detail and SMALL.local(WEEK.end).isoformat() in weekly.detail
    assert "starter pack of 3" in quota_exhausted(T0, WEEK, SMALL).detail


def test_remaining_allowance() -> None:
    assert remaining_allowance(T0, SMALL, weekly_used=0, starter_used=1) == 2
    assert remaining_allowance(T0, SMALL, weekly_used=0, starter_used=5) == 0
    assert remaining_allowance(T1, SMALL, weekly_used=1, starter_used=3) == 1
    assert remaining_allowance(T3, SMALL, weekly_used=1_000, starter_used=0) is None


def test_unknown_gmv_is_tier_zero() -> None:
    assert SMALL.tier_for(None) == T0 and SMALL.tier_for(Decimal("0.00")) == T0
