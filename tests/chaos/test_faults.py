"""The short version of `make chaos` (issue 7): one burst per fault against the
real services on real Kafka and the local MongoDB-wire database, the fault injected mid-burst, then
I1–I5 checked on everything that came out (see tests/chaos/invariants.py)."""

import pytest

from tests.chaos.conftest import SIZES, Sizes
from tests.chaos.instance import ChaosInstance
from tests.chaos.scenario import describe, run_round

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(SIZES.test_timeout)]


def verdict_text(result) -> str:  # type: ignore[no-untyped-def]
    lines = result.verdict.summary()
    if result.timed_out:
        lines.insert(0, "timed out waiting for outcomes")
    return f"{result.fault}: {describe(result)}\n  " + "\n  ".join(lines)


@pytest.mark.parametrize(
    "fault",
    ["kill:moderation", "kill:quota", "kill:messaging", "restart-kafka", "restart-mongo", "poison"],
)
async def test_guarantees_hold_through(fault: str, chaos: ChaosInstance, sizes: Sizes) -> None:
    result = await run_round(
        chaos, fault, sends=sizes.sends, conversations=sizes.conversations, rate=sizes.rate, during_rate=sizes.during_rate,
        drain_timeout=sizes.drain_timeout,
    )
    assert result.ok, verdict_text(result)
    counts = result.verdict.counts
    assert counts.delivered > 0
    if fault == "poison":
        assert counts.poison > 0 and counts.dead_letters >= counts.poison
