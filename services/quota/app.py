"""Quota wiring."""

from services.common.runtime import ServiceRuntime
from services.common.settings import ServiceSettings
from services.quota import handlers


class QuotaSettings(ServiceSettings):
    service_name: str = "quota"
    http_port: int = 8103


def create_runtime(**overrides: object) -> ServiceRuntime:
    runtime = ServiceRuntime(QuotaSettings(**overrides))
    handlers.register(runtime)
    return runtime
