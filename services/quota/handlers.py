"""Quota's subscribers: every screened send is admitted or refused once; directory
and collaboration events keep the facts that admission judges by."""

import asyncio

from im_contracts import (
    CollaborationEvent,
    CreatorConnected,
    CreatorProfileUpdated,
    DirectoryEvent,
    SellerGmvUpdated,
    SendScreened,
    SendScreenedMessage,
    TargetCollaborationAccepted,
)
from im_contracts.topics import COLLABORATION_EVENTS, DIRECTORY_EVENTS, SEND_SCREENED

from services.common.batching import Incoming
from services.common.idempotency import Decision
from services.common.runtime import ServiceRuntime
from services.quota.admission import Admission
from services.quota.store import QuotaStore

CONNECTED_BY_COLLABORATION = "collaboration"


def register(runtime: ServiceRuntime, store: QuotaStore, admission: Admission) -> None:
    async def admit(batch: list[Incoming[SendScreened]]) -> list[Decision]:
        sends = [item.message.send for item in batch]
        command_ids = [send.command_id for send in sends]
        # The stored decisions and the batch's Book read at once: a round trip less
        # per batch; a redelivered command's part of the Book is read for nothing.
        stored, book = await asyncio.gather(runtime.decisions.stored(command_ids), admission.load_book(sends))
        return await runtime.decisions.decide_each(
            command_ids, lambda positions: admission.decide_each([sends[n] for n in positions], book), stored
        )

    # Whatever partitions change hands, what admission holds of its sellers may be stale.
    runtime.batch_subscriber(SEND_SCREENED, SendScreenedMessage, admit, title="quota:admit", on_rebalance=admission.owned.forget)

    @runtime.subscriber(DIRECTORY_EVENTS, purpose="directory", title="quota:directory")
    async def follow_directory(event: DirectoryEvent) -> None:
        match event:
            case SellerGmvUpdated():
                await store.record_gmv(event)
            case CreatorProfileUpdated():
                await store.record_profile(event)
            case CreatorConnected():
                await store.connect(event.seller_id, event.creator_id, str(event.via), event.occurred_at)

    @runtime.subscriber(COLLABORATION_EVENTS, purpose="collaboration", title="quota:collaboration")
    async def follow_collaboration(event: CollaborationEvent) -> None:
        if isinstance(event, TargetCollaborationAccepted):  # accepting connects (R5, R18)
            await store.connect(event.seller_id, event.creator_id, CONNECTED_BY_COLLABORATION, event.occurred_at)
