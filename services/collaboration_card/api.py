"""GET /v1/sellers/{seller_id}/sample-requests?status= and GET /v1/cards/{card_id}."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from im_contracts import SampleRequestStatus
from im_contracts.base import MAX_ID_LENGTH

from services.collaboration_card.domain import card_view
from services.collaboration_card.store import CardStore
from services.common.auth import Authenticated, SellerScope, require_party
from services.common.http import PartyId, not_found
from services.common.runtime import ServiceRuntime

CardId = Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)]


def router(runtime: ServiceRuntime, store: CardStore) -> APIRouter:
    api = APIRouter(prefix="/v1")

    async def readable_card(card_id: CardId, caller: Authenticated) -> dict:
        """The card, for its seller, the creator it is addressed to, or ops."""
        found = await store.find(card_id)
        if found is None:
            raise not_found(f"no card {card_id}")
        require_party(caller, seller_id=found["seller_id"], creator_id=found["creator_id"])
        return found

    @api.get("/sellers/{seller_id}/sample-requests", dependencies=[SellerScope])
    async def sample_requests(
        seller_id: PartyId,
        status: SampleRequestStatus | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> dict:
        """The seller's sample requests, newest first, optionally of one status."""
        await runtime.access.require_active(seller_id)
        return {"items": [card_view(card) for card in await store.sample_requests(seller_id, status, limit)]}

    @api.get("/cards/{card_id}")
    async def card(found: Annotated[dict, Depends(readable_card)]) -> dict:
        await runtime.access.require_active(found["seller_id"])
        return card_view(found)

    return api
