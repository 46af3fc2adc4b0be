"""Messaging wiring."""

from pydantic import Field

from services.common.runtime import ServiceRuntime
from services.common.settings import ServiceSettings
from services.messaging import api, handlers
from services.messaging.bulk import BulkCoordinator
from services.messaging.store import HELD_COUNTERS, BulkStore, MessageStore


class MessagingSettings(ServiceSettings):
    service_name: str = "messaging"
    http_port: int = 8101
    # Conversation counters delivery keeps in memory for the conversations whose
    # partitions it owns (least recently used dropped first); env IM_MESSAGING_HELD_COUNTERS.
    messaging_held_counters: int = Field(HELD_COUNTERS, ge=0)


def create_runtime(**overrides: object) -> ServiceRuntime:
    settings = MessagingSettings(**overrides)
    runtime = ServiceRuntime(settings)
    store = MessageStore(runtime.db, settings.messaging_held_counters)
    bulk_store = BulkStore(runtime.db)
    runtime.on_startup(store.ensure_indexes)
    runtime.on_startup(bulk_store.ensure_indexes)
    handlers.register(runtime, store, BulkCoordinator(bulk_store, runtime.publisher))
    runtime.serve(api.router(runtime, store))
    return runtime
