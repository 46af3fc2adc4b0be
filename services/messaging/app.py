"""Messaging wiring."""

from services.common.runtime import ServiceRuntime
from services.common.settings import ServiceSettings
from services.messaging import api, handlers
from services.messaging.bulk import BulkCoordinator
from services.messaging.store import BulkStore, MessageStore


class MessagingSettings(ServiceSettings):
    service_name: str = "messaging"
    http_port: int = 8101


def create_runtime(**overrides: object) -> ServiceRuntime:
    runtime = ServiceRuntime(MessagingSettings(**overrides))
    store = MessageStore(runtime.db)
    bulk_store = BulkStore(runtime.db)
    runtime.on_startup(store.ensure_indexes)
    runtime.on_startup(bulk_store.ensure_indexes)
    handlers.register(runtime, store, BulkCoordinator(bulk_store, runtime.publisher))
    runtime.serve(api.router(runtime, store))
    return runtime
