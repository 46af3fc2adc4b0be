"""Messaging wiring."""

from services.common.runtime import ServiceRuntime
from services.common.settings import ServiceSettings
from services.messaging import api, handlers
from services.messaging.store import MessageStore


class MessagingSettings(ServiceSettings):
    service_name: str = "messaging"
    http_port: int = 8101


def create_runtime(**overrides: object) -> ServiceRuntime:
    runtime = ServiceRuntime(MessagingSettings(**overrides))
    store = MessageStore(runtime.db)
    runtime.on_startup(store.ensure_indexes)
    handlers.register(runtime, store)
    runtime.serve(api.router(runtime, store))
    return runtime
