"""Inbox projection wiring."""

from services.common.runtime import ServiceRuntime
from services.common.settings import ServiceSettings
from services.inbox_projection import handlers


class InboxSettings(ServiceSettings):
    service_name: str = "inbox-projection"
    http_port: int = 8104


def create_runtime(**overrides: object) -> ServiceRuntime:
    runtime = ServiceRuntime(InboxSettings(**overrides))
    handlers.register(runtime)
    return runtime
