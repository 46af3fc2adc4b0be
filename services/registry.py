"""The five services by deployment name: where each is wired and which topics
it publishes to (DESIGN §1). Subscriptions are declared by the code itself."""

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING

from im_contracts.topics import (
    BULK_COMPLETED,
    COLLABORATION_EVENTS,
    MODERATION_EVENTS,
    QUOTA_EVENTS,
    SEND_ADMITTED,
    SEND_DELIVERED,
    SEND_REJECTED,
    SEND_REQUESTED,
    SEND_SCREENED,
)

if TYPE_CHECKING:  # the table is read by light tools (credentials) that never build a runtime
    from services.common.runtime import ServiceRuntime


@dataclass(frozen=True)
class ServiceSpec:
    module: str
    produces: tuple[str, ...]


SERVICES: dict[str, ServiceSpec] = {
    "messaging": ServiceSpec("services.messaging.app", (SEND_DELIVERED, SEND_REQUESTED, BULK_COMPLETED)),
    "moderation": ServiceSpec("services.moderation.app", (SEND_SCREENED, SEND_REJECTED, MODERATION_EVENTS)),
    "quota": ServiceSpec("services.quota.app", (SEND_ADMITTED, SEND_REJECTED, QUOTA_EVENTS)),
    "inbox-projection": ServiceSpec("services.inbox_projection.app", ()),
    "collaboration-card": ServiceSpec("services.collaboration_card.app", (SEND_REQUESTED, COLLABORATION_EVENTS)),
}


def runtime_factory(name: str) -> Callable[..., "ServiceRuntime"]:
    return import_module(SERVICES[name].module).create_runtime
