"""The short fault run inside `make test`: the chaos instance is started once
for this package and stopped after its last test, even on failure or Ctrl-C
(SIGTERM is turned into an interruption too, so pytest's teardown runs).

Sizes come from the environment so a slow machine can shrink them:
``CHAOS_TEST_SENDS`` (per round, default 60), ``CHAOS_TEST_CONVERSATIONS``
(default 20), ``CHAOS_TEST_RATE`` (sends a second, default 20),
``CHAOS_TEST_DURING_RATE`` (sends a second while the fault lasts, on top of
the round's sends, default 5). Progress is
logged on the ``chaos`` logger (``pytest --log-cli-level=INFO`` shows it live).
"""

import logging
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.chaos.instance import ChaosInstance


@dataclass(frozen=True)
class Sizes:
    sends: int = int(os.environ.get("CHAOS_TEST_SENDS", "60"))
    conversations: int = int(os.environ.get("CHAOS_TEST_CONVERSATIONS", "20"))
    rate: float = float(os.environ.get("CHAOS_TEST_RATE", "20"))
    during_rate: float = float(os.environ.get("CHAOS_TEST_DURING_RATE", "5"))

    @property
    def drain_timeout(self) -> float:
        return 120 + 2.0 * self.sends

    @property
    def test_timeout(self) -> float:
        """pytest-timeout for one round: the drain plus the fault and its recovery."""
        return self.drain_timeout + 300


SIZES = Sizes()


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="package")
def chaos() -> Iterator[ChaosInstance]:
    logging.getLogger("chaos").setLevel(logging.INFO)
    # The faults make the test's own Kafka clients complain loudly, as expected.
    kafka_log = logging.getLogger("aiokafka")
    kafka_level = kafka_log.level
    kafka_log.setLevel(logging.CRITICAL)
    previous = signal.getsignal(signal.SIGTERM)
    if previous in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _interrupt)
    instance = ChaosInstance()
    try:
        instance.start()
        yield instance
    finally:
        instance.stop()
        kafka_log.setLevel(kafka_level)
        if previous in (signal.SIG_DFL, None):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture
def sizes() -> Sizes:
    return SIZES
