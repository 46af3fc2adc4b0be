"""A service started while the database is down comes up anyway: /readyz
answers 503 naming the database while the outage lasts, and the service is
ready once the database is back, having lost nothing of the burst around it (I4)."""

import pytest

from tests.chaos.conftest import SIZES, Sizes
from tests.chaos.instance import ChaosInstance
from tests.chaos.scenario import run_round
from tests.chaos.test_faults import verdict_text

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(SIZES.test_timeout)]


async def test_service_started_during_a_database_outage(chaos: ChaosInstance, sizes: Sizes) -> None:
    result = await run_round(
        chaos, "outage-start:messaging", sends=sizes.sends, conversations=sizes.conversations, rate=sizes.rate, during_rate=sizes.during_rate,
        drain_timeout=sizes.drain_timeout,
    )
    # The fault itself checks /readyz during the outage (503, mongodb not ok): a
    # failure of that is reported among the violations.
    assert result.ok, verdict_text(result)
    assert any("/readyz during the outage: 503" in note for note in result.fault_report.notes), result.fault_report.notes
