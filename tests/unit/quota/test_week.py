"""R10: weeks run Sunday 00:00 to Sunday 00:00 in the policy's time zone, judged
by occurred_at, across daylight-saving changes."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.quota.domain import QuotaPolicy, Weekday, WeekPolicy

LA = ZoneInfo("America/Los_Angeles")
HOUR = timedelta(hours=1)
POLICY = QuotaPolicy.model_validate({"tiers": [{"name": "T", "gmv_30d_up_to": None, "weekly_limit": None, "max_creator_followers": None}]})

instants = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2060, 1, 1), timezones=st.just(UTC)
)


@given(instants)
def test_every_instant_falls_in_the_sunday_midnight_week_containing_it(instant: datetime) -> None:
    week = POLICY.week_of(instant)
    assert week.start <= instant < week.end
    local_start, local_end = week.start.astimezone(LA), week.end.astimezone(LA)
    for boundary in (local_start, local_end):
        assert (boundary.weekday(), boundary.time()) == (Weekday.sunday, time(0, 0))
    assert local_end.date() - local_start.date() == timedelta(days=7)
    assert week.key == local_start.date().isoformat()


@given(instants)
def test_weeks_last_167_168_or_169_hours_and_follow_each_other(instant: datetime) -> None:
    week = POLICY.week_of(instant)
    length = week.end - week.start
    assert length in (167 * HOUR, 168 * HOUR, 169 * HOUR)
    spans_dst_change = week.start.astimezone(LA).utcoffset() != week.end.astimezone(LA).utcoffset()
    assert (length != 168 * HOUR) == spans_dst_change
    assert POLICY.week_of(week.end).start == week.end  # the next week starts where this one ends
    assert POLICY.week_of(week.start - timedelta(microseconds=1)).end == week.start


@given(instants, st.sampled_from(["UTC", "+09:00", "-03:30"]))
def test_the_week_depends_on_the_instant_not_on_how_it_is_written(instant: datetime, offset: str) -> None:
    zone = UTC if offset == "UTC" else datetime.fromisoformat(f"2000-01-01T00:00:00{offset}").tzinfo
    assert POLICY.week_of(instant.astimezone(zone)) == POLICY.week_of(instant)


@pytest.mark.parametrize(
    ("instant", "start", "hours"),
    [
        # spring forward on Sunday 2026-03-08 at 02:00 local: a 167-hour week
        ("2026-03-08T07:59:59+00:00", "2026-03-01T00:00:00-08:00", 168),
        ("2026-03-08T08:00:00+00:00", "2026-03-08T00:00:00-08:00", 167),
        ("2026-03-14T23:59:59-07:00", "2026-03-08T00:00:00-08:00", 167),
        ("2026-03-15T00:00:00-07:00", "2026-03-15T00:00:00-07:00", 168),
        # fall back on Sunday 2026-11-01 at 02:00 local: a 169-hour week
        ("2026-11-01T00:00:00-07:00", "2026-11-01T00:00:00-07:00", 169),
        ("2026-11-01T01:30:00-08:00", "2026-11-01T00:00:00-07:00", 169),  # the second 01:30
        ("2026-11-07T23:59:59-08:00", "2026-11-01T00:00:00-07:00", 169),
        ("2026-11-08T08:00:00+00:00", "2026-11-08T00:00:00-08:00", 168),
    ],
)
def test_weeks_around_dst_changes(instant: str, start: str, hours: int) -> None:
    week = POLICY.week_of(datetime.fromisoformat(instant))
    assert week.start == datetime.fromisoformat(start)
    assert week.end - week.start == hours * HOUR


@settings(max_examples=300)
@given(
    instants,
    st.sampled_from(list(Weekday)),
    st.times(),
    st.sampled_from(["America/Los_Angeles", "America/Sao_Paulo", "America/Santiago", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]),
)
def test_any_configured_week_start_partitions_time(instant: datetime, weekday: Weekday, at: time, zone: str) -> None:
    """Also for start times a DST change skips or repeats, and zones that change at midnight."""
    policy = POLICY.model_copy(update={"week": WeekPolicy(starts_on=weekday, at=at, time_zone=zone)})
    week = policy.week_of(instant)
    assert week.start <= instant < week.end
    assert policy.week_of(week.end).start == week.end
    assert timedelta(days=7) - 2 * HOUR <= week.end - week.start <= timedelta(days=7) + 2 * HOUR
    assert week.start.astimezone(ZoneInfo(zone)).weekday() == weekday


def test_a_configured_week_start() -> None:
    policy = POLICY.model_copy(update={"week": WeekPolicy(starts_on=Weekday.monday, at=time(12, 0), time_zone="UTC")})
    before, after = datetime(2026, 1, 5, 11, 59, tzinfo=UTC), datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    assert policy.week_of(before).start == datetime(2025, 12, 29, 12, 0, tzinfo=UTC)
    assert policy.week_of(after).start == after and policy.week_of(after).key == "2026-01-05"
