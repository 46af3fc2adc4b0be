"""Collaboration-card wiring."""

from services.collaboration_card import handlers
from services.common.runtime import ServiceRuntime
from services.common.settings import ServiceSettings


class CollaborationSettings(ServiceSettings):
    service_name: str = "collaboration-card"
    http_port: int = 8105


def create_runtime(**overrides: object) -> ServiceRuntime:
    runtime = ServiceRuntime(CollaborationSettings(**overrides))
    handlers.register(runtime)
    return runtime
