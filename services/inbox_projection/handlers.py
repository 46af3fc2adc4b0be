"""Inbox projection's subscribers: each topic's events go to the projector.

One consumer group per topic, so a slow topic never holds back another. Events
of one conversation arrive in order within a topic; the projector makes the
interleaving across topics irrelevant."""

from im_contracts import ContractModel, DirectoryEvent, InboxCommand, MessageDelivered, ModerationEvent, SendDeliveredMessage
from im_contracts.topics import DIRECTORY_EVENTS, INBOX_COMMANDS, MODERATION_EVENTS, SEND_DELIVERED

from services.common.batching import Incoming
from services.common.idempotency import Decision
from services.common.runtime import ServiceRuntime
from services.inbox_projection.projector import Projector


PROJECTED = Decision(outcome="projected")


def register(runtime: ServiceRuntime, projector: Projector) -> None:
    async def project(event: ContractModel) -> None:
        applied = await projector.apply(event)
        runtime.metrics.outcomes.labels("projected" if applied else "ignored").inc()

    async def project_delivered(batch: list[Incoming[MessageDelivered]]) -> list[Decision]:
        """A fetch's messages, each conversation's folded into one change of its row."""
        by_row: dict[tuple[str, str], list[MessageDelivered]] = {}
        for item in batch:
            by_row.setdefault((item.message.seller_id, item.message.creator_id), []).append(item.message)
        await projector.deliver(by_row)
        return [PROJECTED] * len(batch)

    runtime.batch_subscriber(
        SEND_DELIVERED, SendDeliveredMessage, project_delivered, purpose="delivered", title="inbox:project-delivered"
    )

    @runtime.subscriber(INBOX_COMMANDS, purpose="commands", title="inbox:project-commands")
    async def project_command(command: InboxCommand) -> None:
        await project(command)

    @runtime.subscriber(MODERATION_EVENTS, purpose="moderation", title="inbox:project-blocks")
    async def project_moderation(event: ModerationEvent) -> None:
        await project(event)

    @runtime.subscriber(DIRECTORY_EVENTS, purpose="directory", title="inbox:project-profiles")
    async def project_directory(event: DirectoryEvent) -> None:
        await project(event)
