"""docker-compose.yml stays runnable: it validates with the compose CLI when
one is installed, and always has what DESIGN and the ops runbook rely on."""

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

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


def test_compose_config_validates() -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no docker compose CLI on this machine; structure is checked below")
    result = subprocess.run([*cli, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"], capture_output=True, text=True)
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
