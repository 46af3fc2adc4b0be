"""Inbox projection wiring."""

from pydantic import Field

from services.common.runtime import ServiceRuntime
from services.common.settings import ServiceSettings
from services.inbox_projection import api, handlers
from services.inbox_projection.projector import Projector
from services.inbox_projection.store import VIEW_ENTRIES, VIEW_SLOTS, InboxStore


class InboxSettings(ServiceSettings):
    service_name: str = "inbox-projection"
    http_port: int = 8104
    # What an instance keeps of the serving layout between pages (reads.py): bucket
    # entries (about 400 bytes each) and directory slots (about 650 bytes each).
    view_entries: int = Field(VIEW_ENTRIES, ge=0)
    view_slots: int = Field(VIEW_SLOTS, ge=0)


def create_runtime(**overrides: object) -> ServiceRuntime:
    settings = InboxSettings(**overrides)
    runtime = ServiceRuntime(settings)
    store = InboxStore(runtime.db, settings.view_entries, settings.view_slots)
    runtime.on_startup(store.ensure_indexes)
    handlers.register(runtime, Projector(store))
    runtime.serve(api.router(runtime, store))
    return runtime
