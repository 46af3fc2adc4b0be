"""The policy file and tiers (R6, R7): defaults are DESIGN's table, numbers live in a file."""

from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.quota.app import DEFAULT_POLICY_PATH, QuotaSettings, load_policy
from services.quota.domain import QuotaPolicy, Tier, Weekday

DEFAULT = load_policy(DEFAULT_POLICY_PATH)


def tier(name: str, up_to: object, limit: object = 10, followers: object = None, **extra: object) -> dict:
    return {"name": name, "gmv_30d_up_to": up_to, "weekly_limit": limit, "max_creator_followers": followers, **extra}


def test_default_policy_is_designs_table() -> None:
    rows = [(t.name, t.gmv_30d_up_to, t.weekly_limit, t.max_creator_followers, t.starter_pack) for t in DEFAULT.tiers]
    assert rows == [
        ("T0", Decimal(0), 0, 20_000, True),
        ("T1", Decimal(2_000), 50, 20_000, False),
        ("T2", Decimal(50_000), 500, None, False),
        ("T3", None, None, None, False),
    ]
    assert (DEFAULT.starter_pack_size, DEFAULT.reply_cap) == (1_000, 5)
    assert (DEFAULT.week.starts_on, DEFAULT.week.at.isoformat(), DEFAULT.week.time_zone) == (
        Weekday.sunday, "00:00:00", "America/Los_Angeles",
    )


def test_settings_point_at_the_default_file_and_can_be_overridden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert QuotaSettings().quota_policy_path == DEFAULT_POLICY_PATH
    monkeypatch.setenv("IM_QUOTA_POLICY_PATH", str(tmp_path / "policy.yaml"))
    assert QuotaSettings().quota_policy_path == tmp_path / "policy.yaml"


@pytest.mark.parametrize(
    ("gmv", "expected"),
    [
        (None, "T0"),
        (Decimal("0"), "T0"),
        (Decimal("0.01"), "T1"),
        (Decimal("2000"), "T1"),
        (Decimal("2000.01"), "T2"),
        (Decimal("50000"), "T2"),
        (Decimal("50000.01"), "T3"),
        (Decimal("1E+9"), "T3"),
    ],
)
def test_tier_for_gmv_bounds_are_inclusive_above(gmv: Decimal | None, expected: str) -> None:
    assert DEFAULT.tier_for(gmv).name == expected


def test_follower_cap_and_unknown_profiles() -> None:
    t1, t2 = DEFAULT.tier_for(Decimal(1)), DEFAULT.tier_for(Decimal(3000))
    assert t1.admits_creator(20_000) and not t1.admits_creator(20_001)
    assert not t1.admits_creator(None)  # unknown counts as above any cap (R8)
    assert t2.admits_creator(10_000_000) and t2.admits_creator(None)  # no cap, nothing to be above


def test_words_in_the_file_mean_null() -> None:
    parsed = Tier.model_validate({"name": "X", "gmv_30d_up_to": "none", "weekly_limit": "Unlimited", "max_creator_followers": "none"})
    assert (parsed.gmv_30d_up_to, parsed.weekly_limit, parsed.max_creator_followers) == (None, None, None)


def test_a_custom_week_and_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "week: {starts_on: Monday, at: '12:00', time_zone: Europe/Berlin}\n"
        "starter_pack_size: 3\nreply_cap: 2\n"
        "tiers:\n"
        "  - {name: A, gmv_30d_up_to: 0, weekly_limit: 0, starter_pack: true, max_creator_followers: 10}\n"
        "  - {name: B, gmv_30d_up_to: none, weekly_limit: 2, max_creator_followers: none}\n"
    )
    policy = load_policy(path)
    assert (policy.week.starts_on, policy.starter_pack_size, policy.reply_cap) == (Weekday.monday, 3, 2)
    assert [t.name for t in policy.tiers] == ["A", "B"]


@pytest.mark.parametrize(
    ("tiers", "problem"),
    [
        ([tier("A", 0), tier("B", 10)], "only the last tier"),
        ([tier("A", None), tier("B", None)], "only the last tier"),
        ([tier("A", 10), tier("B", 5), tier("C", None)], "must increase"),
        ([tier("A", 10), tier("A", None)], "unique"),
        ([], "at least 1"),
        ([tier("A", -1), tier("B", None)], "greater than or equal"),
    ],
)
def test_inconsistent_tiers_are_refused(tiers: list[dict], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        QuotaPolicy.model_validate({"tiers": tiers})


def test_unknown_time_zone_and_weekday_are_refused() -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        QuotaPolicy.model_validate({"tiers": [tier("A", None)], "week": {"time_zone": "Mars/Olympus"}})
    with pytest.raises((ValidationError, KeyError)):
        QuotaPolicy.model_validate({"tiers": [tier("A", None)], "week": {"starts_on": "caturday"}})
