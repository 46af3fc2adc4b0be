"""Collaboration-card subscribers."""

from im_contracts import CollaborationCommand
from im_contracts.topics import COLLABORATION_COMMANDS

from services.common.runtime import ServiceRuntime


def register(runtime: ServiceRuntime) -> None:
    @runtime.subscriber(COLLABORATION_COMMANDS, title="collaboration:commands")
    async def on_command(command: CollaborationCommand) -> None:
        runtime.metrics.outcomes.labels("received").inc()
