"""Where the tests' Kafka and MongoDB-wire database come from, in order:

1. ``KAFKA_BOOTSTRAP_SERVERS`` and ``MONGODB_URI`` from the environment
   (with ``KAFKA_CREDENTIALS_DIR`` when that Kafka wants SASL: a directory of
   ``<principal>.properties`` files, as local instances write them);
2. testcontainers (official ``apache/kafka`` and ``mongo`` images) when a Docker engine answers;
3. the project's native infrastructure (``deploy/local/infra.sh``, instance "test"),
   started here and stopped when the session ends; its Kafka authenticates
   every client (DESIGN §8), each as its own principal.
"""

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
INFRA_SCRIPT = REPO_ROOT / "deploy" / "local" / "infra.sh"
KAFKA_IMAGE = "apache/kafka:4.1.1"
MONGO_IMAGE = "mongo:8.0"


@dataclass
class Infra:
    kafka_bootstrap_servers: str
    mongodb_uri: str
    source: str
    kafka_credentials: Path | None = None  # None: a Kafka without SASL (testcontainers)
    _stop: Callable[[], None] | None = field(default=None, repr=False)

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()


def _docker_answers() -> bool:
    try:
        import docker  # testcontainers' own dependency

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


def _from_testcontainers() -> Infra:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.mongodb import MongoDbContainer

    kafka = KafkaContainer(KAFKA_IMAGE).with_kraft()
    mongo = MongoDbContainer(MONGO_IMAGE)
    kafka.start()
    mongo.start()

    def stop() -> None:
        kafka.stop()
        mongo.stop()

    return Infra(kafka.get_bootstrap_server(), mongo.get_connection_url(), "testcontainers", None, stop)


def _native() -> Infra:
    env = {**os.environ, "SCIM_INSTANCE": os.environ.get("SCIM_INSTANCE", "test")}
    subprocess.run(["bash", str(INFRA_SCRIPT), "start"], check=True, env=env, stdout=subprocess.DEVNULL)
    values = dict(
        line.split("=", 1)
        for line in subprocess.run(
            ["bash", str(INFRA_SCRIPT), "env"], check=True, env=env, capture_output=True, text=True
        ).stdout.split()
    )

    def stop() -> None:
        subprocess.run(["bash", str(INFRA_SCRIPT), "stop"], env=env, stdout=subprocess.DEVNULL, check=False)

    return Infra(
        values["KAFKA_BOOTSTRAP_SERVERS"], values["MONGODB_URI"], f"native ({env['SCIM_INSTANCE']})", Path(values["KAFKA_CREDENTIALS_DIR"]), stop
    )


def resolve_infra() -> Infra:
    kafka, mongo = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("MONGODB_URI")
    if kafka and mongo:
        credentials = os.environ.get("KAFKA_CREDENTIALS_DIR")
        return Infra(kafka, mongo, "environment", Path(credentials) if credentials else None)
    if _docker_answers():
        return _from_testcontainers()
    return _native()
