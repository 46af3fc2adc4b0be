"""Inbox projection's subscribers."""

from im_contracts import SendDeliveredMessage
from im_contracts.topics import SEND_DELIVERED

from services.common.runtime import ServiceRuntime


def register(runtime: ServiceRuntime) -> None:
    @runtime.subscriber(SEND_DELIVERED, title="inbox:project-delivered")
    async def project_delivered(delivered: SendDeliveredMessage) -> None:
        runtime.metrics.outcomes.labels("projected").inc()
