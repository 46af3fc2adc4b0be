"""The engines the conformance suite runs on:

- ``native``: the local engine (mongo-java-server through deploy/local/MongoLauncher.java),
  a private instance "engine" of ``deploy/local/infra.sh`` that these tests may kill;
- ``suite``: the database the rest of the suite resolved (tests/infra.py) when it is
  not the native engine: real MongoDB through testcontainers wherever a Docker engine
  answers, or whatever ``MONGODB_URI`` names.
"""

import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from tests.infra import INFRA_SCRIPT, Infra

NATIVE_INSTANCE = "engine"


@dataclass
class Engine:
    name: str
    uri: str
    native: bool

    def _infra(self, action: str) -> None:
        env = {**os.environ, "SCIM_INSTANCE": NATIVE_INSTANCE}
        subprocess.run(["bash", str(INFRA_SCRIPT), action], check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill_and_restart(self) -> None:
        """SIGKILL the engine (no clean close), then start it on the same file."""
        if not self.native:
            pytest.skip("only the native engine is this suite's to kill")
        self._infra("kill-mongo")
        self._infra("start-mongo")


@pytest.fixture(scope="session")
def native_engine() -> Iterator[Engine]:
    engine = Engine("native", "", native=True)
    engine._infra("clean")
    engine._infra("start-mongo")
    env = {**os.environ, "SCIM_INSTANCE": NATIVE_INSTANCE}
    values = dict(line.split("=", 1) for line in subprocess.run(
        ["bash", str(INFRA_SCRIPT), "env"], check=True, env=env, capture_output=True, text=True).stdout.split())
    engine.uri = values["MONGODB_URI"]
    yield engine
    engine._infra("stop-mongo")


@pytest.fixture(scope="session", params=["native", "suite"])
def engine(request: pytest.FixtureRequest) -> Engine:
    if request.param == "native":
        return request.getfixturevalue("native_engine")
    infra: Infra = request.getfixturevalue("infra")
    if infra.source.startswith("native"):
        pytest.skip("the suite's database is the native engine as well (no Docker engine answers, no MONGODB_URI)")
    return Engine(infra.source, infra.mongodb_uri, native=False)


@pytest.fixture
async def db(engine: Engine) -> AsyncIterator[AsyncDatabase]:
    """A fresh database per test, dropped afterwards."""
    client = AsyncMongoClient(engine.uri, tz_aware=True, maxPoolSize=200, serverSelectionTimeoutMS=30_000)
    name = f"conformance_{uuid.uuid4().hex[:10]}"
    yield client[name]
    await client.drop_database(name)
    await client.close()
