"""Session fixtures: real infrastructure (see tests/infra.py), topics, and the
five services running in-process against it."""

import uuid

import pytest

from services.common.credentials import OPS
from services.common.kafka_client import settings_of
from services.common.topics import ensure_topics
from tests.harness import Suite
from tests.infra import Infra, resolve_infra


@pytest.fixture(scope="session")
def infra() -> Infra:
    resolved = resolve_infra()
    yield resolved
    resolved.stop()


@pytest.fixture(scope="session")
async def topics(infra: Infra) -> None:
    await ensure_topics(settings_of(OPS, infra.kafka_bootstrap_servers, infra.kafka_credentials))


@pytest.fixture(scope="session")
async def suite(infra: Infra, topics: None) -> Suite:
    running = Suite(infra.kafka_bootstrap_servers, infra.mongodb_uri, prefix=f"t{uuid.uuid4().hex[:8]}", kafka_credentials=infra.kafka_credentials)
    await running.start()
    yield running
    await running.stop()
