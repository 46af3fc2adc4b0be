"""Moderation wiring."""

from services.common.runtime import ServiceRuntime
from services.common.settings import ServiceSettings
from services.moderation import handlers


class ModerationSettings(ServiceSettings):
    service_name: str = "moderation"
    http_port: int = 8102


def create_runtime(**overrides: object) -> ServiceRuntime:
    runtime = ServiceRuntime(ModerationSettings(**overrides))
    handlers.register(runtime)
    return runtime
