"""The benchmark's statistics: percentiles, the divergence rule, the ramp."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.loadgen import command_id_of
from bench.stats import (
    DivergenceRule,
    LatencySummary,
    StepResult,
    max_sustained,
    percentile,
    ramp_rates,
    rate_text,
    reference_p99,
)


def step(rate: float, *, p99: float = 10.0, out: float | None = None, generated: float | None = None, aborted: bool = False) -> StepResult:
    latency = LatencySummary(count=100, p50=p99 / 2, p95=p99 * 0.9, p99=p99, max=p99, mean=p99 / 2)
    return StepResult(
        offered_rate=rate, achieved_offer_rate=generated if generated is not None else rate, seconds=10, sent=int(rate * 10),
        completed=int(rate * 10), rejected=0, delivered_rate=out if out is not None else rate, latency=latency, aborted=aborted,
    )


def test_percentile_interpolates_between_closest_ranks() -> None:
    assert percentile([4, 1, 3, 2], 50) == 2.5
    assert percentile([1, 2, 3, 4], 0) == 1
    assert percentile([1, 2, 3, 4], 100) == 4
    assert percentile([7], 99) == 7
    assert percentile(list(range(1, 101)), 99) == pytest.approx(99.01)


def test_percentile_refuses_nothing_and_bad_ranks() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1], 101)


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1), st.floats(min_value=0, max_value=100))
def test_percentile_lies_within_the_values(values: list[float], q: float) -> None:
    assert min(values) <= percentile(values, q) <= max(values)


def test_summary_is_in_milliseconds() -> None:
    summary = LatencySummary.of_seconds([0.001, 0.002, 0.003])
    assert (summary.count, summary.p50, summary.max, summary.mean) == (3, 2.0, 3.0, 2.0)
    assert LatencySummary.of_seconds([]) is None


def test_a_step_diverges_when_p99_passes_ten_times_the_low_load_p99() -> None:
    rule = DivergenceRule(latency_factor=10, floor_ms=25)
    assert rule.reason(step(100, p99=40), reference_p99_ms=5) is None
    assert "p99" in rule.reason(step(100, p99=51), reference_p99_ms=5)


def test_a_tiny_reference_p99_does_not_end_the_ramp_below_the_floor() -> None:
    rule = DivergenceRule(latency_factor=10, floor_ms=25)
    assert rule.reason(step(100, p99=20), reference_p99_ms=1) is None


def test_a_step_diverges_when_fewer_than_90_percent_come_out() -> None:
    rule = DivergenceRule()
    assert rule.reason(step(100, out=91), reference_p99_ms=10) is None
    assert "came out" in rule.reason(step(100, out=89), reference_p99_ms=10)


def test_a_generator_that_cannot_keep_up_is_reported_as_bench_bound() -> None:
    assert "bench-bound" in DivergenceRule().reason(step(10_000, generated=7_000, out=7_000), reference_p99_ms=10)


def test_a_slow_generator_and_a_slower_system_is_not_only_bench_bound() -> None:
    reason = DivergenceRule().reason(step(10_000, generated=7_000, out=5_000), reference_p99_ms=10)
    assert "bench-bound" not in reason and "5,000/s of it came out" in reason


def test_an_aborted_step_has_diverged() -> None:
    assert "aborted" in DivergenceRule().reason(step(100, aborted=True), reference_p99_ms=10)


def test_max_sustained_is_the_fastest_step_that_held() -> None:
    held, also_held, broke = step(100), step(200), step(400)
    broke.diverged = "p99"
    assert max_sustained([held, also_held, broke]) is also_held
    assert max_sustained([broke]) is None


def test_the_ramp_passes_every_fixed_load_and_stops_at_the_limit() -> None:
    assert ramp_rates([100, 300, 1000], growth=1.5, limit=2000) == [100, 150, 225, 300, 450, 675, 1000, 1500]
    assert ramp_rates([5, 100], growth=2, limit=100) == [5, 10, 20, 40, 100]


@given(st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=5), st.floats(min_value=1.1, max_value=4))
def test_the_ramp_increases_and_contains_the_fixed_loads(fixed: list[int], growth: float) -> None:
    rates = ramp_rates(fixed, growth=growth, limit=5000)
    assert rates == sorted(set(rates))
    assert set(float(f) for f in fixed) <= set(rates)


def test_command_id_is_read_without_parsing_the_whole_body() -> None:
    assert command_id_of(b'{"type":"MessageDelivered","command_id":"c-1","seq":3}') == "c-1"
    assert command_id_of(b'{"command_id": "c-2"}') == "c-2"
    assert command_id_of(b"not json") is None


def test_rates_read_well_at_both_ends() -> None:
    assert [rate_text(r) for r in (1500, 225, 10, 2.5, 0.625)] == ["1,500", "225", "10", "2.5", "0.625"]


def test_the_low_load_reference_is_the_lowest_p99_of_the_first_three_steps() -> None:
    assert reference_p99([]) is None
    assert reference_p99([step(5, p99=189), step(7.5, p99=109), step(11, p99=140), step(17, p99=50)]) == 109
    assert reference_p99([step(5, p99=60)]) == 60
