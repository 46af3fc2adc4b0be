"""The five services by their deployment name (ports are DESIGN §5's defaults)."""

from collections.abc import Callable
from importlib import import_module

from services.common.runtime import ServiceRuntime

SERVICES: dict[str, str] = {
    "messaging": "services.messaging.app",
    "moderation": "services.moderation.app",
    "quota": "services.quota.app",
    "inbox-projection": "services.inbox_projection.app",
    "collaboration-card": "services.collaboration_card.app",
}


def runtime_factory(name: str) -> Callable[..., ServiceRuntime]:
    return import_module(SERVICES[name]).create_runtime
