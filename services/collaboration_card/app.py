"""Collaboration-card wiring."""

from services.collaboration_card import api, handlers
from services.collaboration_card.service import CardService
from services.collaboration_card.store import CardStore
from services.common.runtime import ServiceRuntime
from services.common.settings import ServiceSettings


class CollaborationSettings(ServiceSettings):
    service_name: str = "collaboration-card"
    http_port: int = 8105


def create_runtime(**overrides: object) -> ServiceRuntime:
    runtime = ServiceRuntime(CollaborationSettings(**overrides))
    store = CardStore(runtime.db)
    runtime.on_startup(store.ensure_indexes)
    handlers.register(runtime, CardService(store, runtime.log))
    runtime.serve(api.router(runtime, store))
    return runtime
