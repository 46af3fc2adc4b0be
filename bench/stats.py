"""Latency statistics and the rule that ends a load ramp (pure: no I/O).

Latencies are recorded in seconds and reported in milliseconds."""

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), interpolated linearly between closest
    ranks (numpy's default method)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} outside 0..100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


@dataclass(frozen=True)
class LatencySummary:
    """Milliseconds."""

    count: int
    p50: float
    p95: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of_seconds(cls, seconds: Sequence[float]) -> "LatencySummary | None":
        if not seconds:
            return None
        ms = sorted(s * 1000 for s in seconds)
        return cls(
            count=len(ms),
            p50=round(percentile(ms, 50), 2),
            p95=round(percentile(ms, 95), 2),
            p99=round(percentile(ms, 99), 2),
            max=round(ms[-1], 2),
            mean=round(sum(ms) / len(ms), 2),
        )


@dataclass
class StepResult:
    """One step of a load ramp: a fixed offered rate held for a while."""

    offered_rate: float  # what was asked for, per second
    achieved_offer_rate: float  # what the load generator managed to publish, per second
    seconds: float  # how long load was offered
    sent: int
    completed: int  # outcomes seen (delivered or rejected) once the step had drained
    rejected: int
    delivered_rate: float  # outcomes per second seen while the load was offered
    latency: LatencySummary | None  # publication -> outcome
    aborted: bool = False  # stopped early because the backlog kept growing
    diverged: str | None = None  # why this step counts as beyond the sustainable rate
    cpu_ms_per_send: dict[str, float] | None = None  # CPU per outcome of each process (services, Kafka, database)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DivergenceRule:
    """A step has diverged when its p99 exceeds ``latency_factor`` times the
    low-load p99 (and ``floor_ms``, so that a tiny low-load p99 on a noisy
    machine does not end the ramp), or when fewer than ``min_delivery_ratio``
    of the offered messages per second come out."""

    latency_factor: float = 10.0
    floor_ms: float = 25.0
    min_delivery_ratio: float = 0.9
    min_offer_ratio: float = 0.9

    def p99_limit(self, reference_p99_ms: float) -> float:
        return max(self.latency_factor * reference_p99_ms, self.floor_ms)

    def reason(self, step: StepResult, reference_p99_ms: float | None) -> str | None:
        if step.achieved_offer_rate < self.min_offer_ratio * step.offered_rate:
            generated = f"load generator reached only {rate_text(step.achieved_offer_rate)}/s"
            if step.delivered_rate >= self.min_delivery_ratio * step.achieved_offer_rate:
                return f"{generated} (bench-bound)"
            return f"{generated}, and only {rate_text(step.delivered_rate)}/s of it came out"
        if step.aborted:
            return "backlog kept growing; step aborted"
        if step.latency is None:
            return "nothing came out"
        if step.delivered_rate < self.min_delivery_ratio * step.offered_rate:
            return (
                f"{rate_text(step.delivered_rate)}/s came out, below {self.min_delivery_ratio:.0%} "
                f"of {rate_text(step.offered_rate)}/s offered"
            )
        if reference_p99_ms is not None and step.latency.p99 > self.p99_limit(reference_p99_ms):
            return f"p99 {step.latency.p99:.1f} ms > {self.p99_limit(reference_p99_ms):.1f} ms"
        return None


# The ramp's low-load reference is the lowest p99 of its first steps: one stall in
# the first step (a p99 of 189 ms against 52-72 ms in the runs around it, full bench
# 15-41-05) must not loosen the rule for the whole ramp.
REFERENCE_STEPS = 3


def reference_p99(steps: Sequence[StepResult]) -> float | None:
    """The low-load p99 the divergence rule multiplies: the lowest of the first steps'."""
    p99s = [step.latency.p99 for step in steps[:REFERENCE_STEPS] if step.latency is not None]
    return min(p99s) if p99s else None


def rate_text(rate: float) -> str:
    """A message rate for people: 1,500 / 225 / 2.5 / 0.625."""
    return f"{rate:,.0f}" if rate >= 10 else f"{rate:.3g}"


def max_sustained(steps: Iterable[StepResult]) -> StepResult | None:
    """The step with the highest offered rate that did not diverge."""
    sustained = [s for s in steps if s.diverged is None]
    return max(sustained, key=lambda s: s.offered_rate, default=None)


def ramp_rates(fixed: Sequence[float], *, growth: float, limit: float) -> list[float]:
    """The fixed loads in increasing order, with geometric steps (factor
    ``growth``) filled in between them and above the last one, up to ``limit``.
    A filled-in step never sits closer than sqrt(growth) to the next fixed load."""
    if growth <= 1:
        raise ValueError("growth must be above 1")
    anchors = sorted({float(r) for r in fixed if r <= limit})
    rates: list[float] = []
    for low, high in zip(anchors, [*anchors[1:], None]):
        rate = low
        while True:
            rates.append(round(rate, 1))
            rate *= growth
            if high is None and rate > limit:
                break
            if high is not None and rate >= high / math.sqrt(growth):
                break
    return rates
