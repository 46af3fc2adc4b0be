"""GET /v1/conversations/{seller_id}/{creator_id}/messages (newest first)."""

from typing import Annotated

from fastapi import APIRouter, Query

from im_contracts import conversation_id

from services.common.auth import ConversationScope
from services.common.http import Int64, PartyId
from services.common.runtime import ServiceRuntime
from services.messaging.domain import delivered_fields
from services.messaging.store import MessageStore


def router(runtime: ServiceRuntime, store: MessageStore) -> APIRouter:
    api = APIRouter(prefix="/v1")

    @api.get("/conversations/{seller_id}/{creator_id}/messages", dependencies=[ConversationScope])
    async def messages(
        seller_id: PartyId,
        creator_id: PartyId,
        before_seq: Annotated[Int64 | None, Query(ge=1)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> dict:
        await runtime.access.require_active(seller_id)
        docs = await store.page(conversation_id(seller_id, creator_id), before_seq, limit + 1)
        items = [delivered_fields(d) for d in docs[:limit]]
        next_before_seq = items[-1]["seq"] if len(docs) > limit else None
        return {"items": items, "next_before_seq": next_before_seq}

    return api
