"""docker-compose.yml stays runnable: it validates with the compose CLI when
one is installed, and always has what DESIGN and the ops runbook rely on."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from services.common.credentials import compose_env, service_principal
from services.registry import SERVICES

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
PORTS = {"messaging": 8101, "moderation": 8102, "quota": 8103, "inbox-projection": 8104, "collaboration-card": 8105}


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_config_validates(tmp_path: Path) -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no docker compose CLI on this machine; structure is checked below")
    env_file = tmp_path / ".env"
    env_file.write_text(compose_env())  # the secrets a user generates (README, Docker)
    result = subprocess.run(
        [*cli, "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(env_file), "config", "-q"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_infrastructure_uses_official_images_with_healthchecks() -> None:
    services = COMPOSE["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["mongo"]["image"].startswith("mongo:")
    assert "healthcheck" in services["kafka"] and "healthcheck" in services["mongo"]


@pytest.mark.parametrize("name", list(SERVICES))
def test_each_service_runs_from_the_shared_image_after_its_dependencies(name: str) -> None:
    service = COMPOSE["services"][name]
    assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    assert service["command"][-1] == f"services.{name.replace('-', '_')}"
    assert service["environment"]["IM_HTTP_PORT"] == str(PORTS[name])
    assert f"{PORTS[name]}:{PORTS[name]}" in service["ports"]
    assert "healthcheck" in service
    assert service["depends_on"] == {
        "kafka": {"condition": "service_healthy"},
        "mongo": {"condition": "service_healthy"},
        "topics": {"condition": "service_completed_successfully"},
    }


def test_each_service_is_its_own_kafka_principal_over_tls() -> None:
    for name in SERVICES:
        env = COMPOSE["services"][name]["environment"]
        assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL" and env["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
        assert env["KAFKA_SASL_USERNAME"] == service_principal(name)
        assert re.fullmatch(r"\$\{KAFKA_PASSWORD_[A-Z_]+\}", env["KAFKA_SASL_PASSWORD"])
        assert env["KAFKA_SSL_CAFILE"] == "/certs/ca.pem"


def test_the_broker_takes_only_authenticated_clients_and_no_secret_is_committed() -> None:
    start = (ROOT / "deploy" / "compose" / "kafka-start.sh").read_text()
    protocols = re.search(r"^listener.security.protocol.map=(.*)$", start, re.M).group(1)
    assert protocols == "INTERNAL:SASL_SSL,EXTERNAL:SASL_SSL,CONTROLLER:SASL_PLAINTEXT"
    assert "allow.everyone.if.no.acl.found=false" in start and "super.users=User:im-broker;User:im-ops" in start
    assert "CONTROLLER://localhost:9093" in start and "9093" not in str(COMPOSE["services"]["kafka"]["ports"])
    text = (ROOT / "docker-compose.yml").read_text()
    assert not re.search(r'PASSWORD[A-Z_]*: (?!"?\$\{)', text), "passwords come from .env only"
    assert ".env" in (ROOT / ".gitignore").read_text().split()
