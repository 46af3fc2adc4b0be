"""Inbox projection's subscribers: each topic's events go to the projector.

One consumer group per topic, so a slow topic never holds back another. Events
of one conversation arrive in order within a topic; the projector makes the
interleaving across topics irrelevant."""

from im_contracts import ContractModel, DirectoryEvent, InboxCommand, ModerationEvent, SendDeliveredMessage
from im_contracts.topics import DIRECTORY_EVENTS, INBOX_COMMANDS, MODERATION_EVENTS, SEND_DELIVERED

from services.common.runtime import ServiceRuntime
from services.inbox_projection.projector import Projector


def register(runtime: ServiceRuntime, projector: Projector) -> None:
    async def project(event: ContractModel) -> None:
        applied = await projector.apply(event)
        runtime.metrics.outcomes.labels("projected" if applied else "ignored").inc()

    @runtime.subscriber(SEND_DELIVERED, purpose="delivered", title="inbox:project-delivered", pipeline=True)
    async def project_delivered(event: SendDeliveredMessage) -> None:
        await project(event)

    @runtime.subscriber(INBOX_COMMANDS, purpose="commands", title="inbox:project-commands")
    async def project_command(command: InboxCommand) -> None:
        await project(command)

    @runtime.subscriber(MODERATION_EVENTS, purpose="moderation", title="inbox:project-blocks")
    async def project_moderation(event: ModerationEvent) -> None:
        await project(event)

    @runtime.subscriber(DIRECTORY_EVENTS, purpose="directory", title="inbox:project-profiles")
    async def project_directory(event: DirectoryEvent) -> None:
        await project(event)
