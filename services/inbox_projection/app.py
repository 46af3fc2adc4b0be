"""Inbox projection wiring."""

from services.common.runtime import ServiceRuntime
from services.common.settings import ServiceSettings
from services.inbox_projection import api, handlers
from services.inbox_projection.projector import Projector
from services.inbox_projection.store import InboxStore


class InboxSettings(ServiceSettings):
    service_name: str = "inbox-projection"
    http_port: int = 8104


def create_runtime(**overrides: object) -> ServiceRuntime:
    runtime = ServiceRuntime(InboxSettings(**overrides))
    store = InboxStore(runtime.db)
    runtime.on_startup(store.ensure_indexes)
    handlers.register(runtime, Projector(store))
    runtime.serve(api.router(runtime, store))
    return runtime
