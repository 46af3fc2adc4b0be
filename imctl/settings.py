"""Where imctl finds the suite, read like the services read it, and the one
place each kind of client is built (credentials of DESIGN §7–§8 plug in here)."""

from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import Field

from imctl.output import Refused
from services.common import tokens
from services.common.auth import Role
from services.common.kafka_client import client_options
from services.common.settings import ServiceSettings

# DESIGN §5's default ports are IM_PORT_BASE + 1 … + 5, in this order (deploy/local/services.sh).
SERVICE_PORT_OFFSETS = {
    "messaging": 1,
    "moderation": 2,
    "quota": 3,
    "inbox-projection": 4,
    "collaboration-card": 5,
}

Client = TypeVar("Client")


class ImctlSettings(ServiceSettings):
    """KAFKA_BOOTSTRAP_SERVERS, MONGODB_URI and every IM_ setting as the services
    read them, plus where their HTTP APIs listen and how long to wait for outcomes."""

    service_name: str = "imctl"
    port_base: int = 8100  # IM_PORT_BASE, as for `make run`
    # {"inbox-projection": "http://inbox:8104", …}: overrides the port-base URL per service.
    urls: dict[str, str] = Field(default_factory=dict, validation_alias="IMCTL_URLS")
    token: str | None = Field(None, validation_alias="IMCTL_TOKEN")
    # A local instance's signing key (.data/<instance>/auth): `imctl token` mints with it, and
    # without IMCTL_TOKEN the reads carry a short-lived ops token minted from it.
    auth_dir: Path | None = Field(None, validation_alias="IMCTL_AUTH_DIR")
    timeout: float = Field(30.0, gt=0, validation_alias="IMCTL_TIMEOUT")

    def service_url(self, service: str) -> str:
        if service in self.urls:
            return self.urls[service].rstrip("/")
        return f"http://{self.http_host}:{self.port_base + SERVICE_PORT_OFFSETS[service]}"


def kafka_client(settings: ImctlSettings, kind: type[Client], **options: Any) -> Client:
    """An aiokafka producer, consumer or admin client of the suite's cluster."""
    return kind(**client_options(settings), **options)


def http_client(settings: ImctlSettings, service: str) -> httpx.Client:
    """A client of one service's read API (DESIGN §5), with the bearer token if one is set."""
    token = settings.token
    if token is None and settings.auth_dir is not None and (settings.auth_dir / tokens.PRIVATE_KEY).exists():
        token = tokens.mint(settings.auth_dir, Role.OPS, "imctl", ttl=300, issuer=settings.auth_issuer)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=settings.service_url(service), headers=headers, timeout=10.0)


def path(*segments: str) -> str:
    """A URL path from ids, each quoted so an id can never reach another endpoint."""
    return "/" + "/".join(quote(segment, safe="") for segment in segments)


def get(current: ImctlSettings, service: str, url_path: str, **params: Any) -> Any:
    """GET one resource; a refusal by the service becomes its error code and detail."""
    with http_client(current, service) as client:
        try:
            response = client.get(url_path, params={name: value for name, value in params.items() if value is not None})
        except httpx.TransportError as exc:
            raise Refused(f"cannot reach {service} at {client.base_url}: {exc or type(exc).__name__}") from None
    if response.is_success:
        return response.json()
    try:
        body = response.json()
        error, detail = body["error"], body["detail"]
    except (ValueError, KeyError, TypeError):
        error, detail = response.reason_phrase, response.text[:200]
    raise Refused(f"{service} answered {response.status_code} {error}: {detail}")
