"""A graceful handover (SIGTERM, then started again: `supervisorctl restart`)
in the middle of a burst loses nothing and doubles nothing: the stopping
service finishes and commits what it holds, so not even an identical outcome
is published twice."""

import pytest

from tests.chaos.conftest import SIZES, Sizes
from tests.chaos.instance import PIPELINE, ChaosInstance
from tests.chaos.scenario import run_round
from tests.chaos.test_faults import verdict_text

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(SIZES.test_timeout)]


@pytest.mark.parametrize("service", PIPELINE)
async def test_sigterm_mid_burst_loses_and_doubles_nothing(service: str, chaos: ChaosInstance, sizes: Sizes) -> None:
    result = await run_round(
        chaos, f"term:{service}", sends=sizes.sends, conversations=sizes.conversations, rate=sizes.rate, during_rate=sizes.during_rate,
        drain_timeout=sizes.drain_timeout,
    )
    assert result.ok, verdict_text(result)
    assert result.verdict.counts.duplicates == 0, f"a graceful handover re-published outcomes: {verdict_text(result)}"
