"""Property: whatever a record holds, every subscriber of every service ends it
as exactly one of handled or dead-lettered, no exception escapes and nothing
is redelivered (I3). Each service's real decoders, validation, handlers and
stores run on FastStream's in-memory broker against the real database.

Budget: IM_FUZZ_EXAMPLES examples per consumed topic and service (default 25,
about a minute in all); `IM_FUZZ_EXAMPLES=2000 make test …` for a long run."""

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
from faststream.kafka import TestKafkaBroker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from im_contracts.topics import DLQ
from services.common.runtime import ServiceRuntime
from services.registry import SERVICES, runtime_factory
from tests.fuzz import hostile_records, subscriptions
from tests.infra import Infra

pytestmark = pytest.mark.integration

FUZZ = settings(
    max_examples=int(os.environ.get("IM_FUZZ_EXAMPLES", "25")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


class Fuzzed:
    """One service on the in-memory broker, with what it dead-lettered."""

    def __init__(self, runtime: ServiceRuntime) -> None:
        self.runtime = runtime
        self.broker: Any = None
        self.letters: list[Any] = []
        self.topics = subscriptions(runtime)

        @runtime.broker.subscriber(DLQ)
        async def collect(letter: dict) -> None:
            self.letters.append(letter)

    def results(self, topic: str) -> dict[str, float]:
        totals: dict[str, float] = {}
        for metric in self.runtime.metrics.registry.collect():
            for sample in metric.samples:
                if sample.name == "im_messages_handled_total" and sample.labels["topic"] == topic:
                    totals[sample.labels["result"]] = totals.get(sample.labels["result"], 0) + sample.value
        return totals


@pytest.fixture(scope="module")
async def fuzzed(infra: Infra) -> AsyncIterator[dict[str, Fuzzed]]:
    prefix = f"fz{uuid.uuid4().hex[:8]}"
    services: dict[str, Fuzzed] = {}
    async with AsyncExitStack() as stack:
        for name in SERVICES:
            runtime = runtime_factory(name)(
                mongodb_uri=infra.mongodb_uri, database_prefix=prefix, group_prefix=prefix, retry_initial_backoff_seconds=0.01
            )
            service = services[name] = Fuzzed(runtime)
            await runtime.prepare()
            service.broker = await stack.enter_async_context(TestKafkaBroker(runtime.broker))
            stack.push_async_callback(runtime.mongo.close)
        yield services


CASES = [(name, topic) for name, spec in SERVICES.items() for topic in sorted(subscriptions(runtime_factory(name)()))]


@pytest.mark.parametrize(("service", "topic"), CASES, ids=[f"{s}:{t}" for s, t in CASES])
@FUZZ
@given(data=st.data())
async def test_every_record_ends_handled_or_dead_lettered_once(fuzzed: dict[str, Fuzzed], service: str, topic: str, data: st.DataObject) -> None:
    target = fuzzed[service]
    value, key = data.draw(hostile_records(topic), label="record")
    before, letters_before = target.results(topic), len(target.letters)

    await target.broker.publish(value, topic, key=key)  # raises if any subscriber let an exception escape

    after = target.results(topic)
    grew = {result: after.get(result, 0) - before.get(result, 0) for result in after}
    assert grew.get("error", 0) == 0, "a record was left uncommitted (it would be redelivered)"
    assert grew.get("ok", 0) + grew.get("dead_letter", 0) == target.topics[topic], grew  # one outcome per subscriber
    assert len(target.letters) - letters_before == grew.get("dead_letter", 0)
    assert target.runtime.health.degraded_reason is None
