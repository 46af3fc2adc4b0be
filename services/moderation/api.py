"""GET /v1/sellers/{seller_id}/blocks and /v1/sellers/{seller_id}/access.

Both answer from moderation's own state, the source of truth for blocks and
access, so a read right after a command's event reflects it without waiting for
the shared access view to catch up.
"""

from fastapi import APIRouter

from im_contracts import SellerAccessStatus

from services.common.access import SellerAccessRevoked
from services.common.auth import SellerScope
from services.common.http import PartyId
from services.moderation.domain import SubjectKind
from services.moderation.store import ModerationStore


def router(store: ModerationStore) -> APIRouter:
    api = APIRouter(prefix="/v1")

    @api.get("/sellers/{seller_id}/blocks", dependencies=[SellerScope])
    async def blocks(seller_id: PartyId) -> dict:
        """Creators the seller blocked and creators who blocked the seller (ids, sorted).
        A revoked seller gets 403 SELLER_ACCESS_REVOKED, like every read about it (R13)."""
        status = await store.access_of(seller_id)
        if status is not SellerAccessStatus.ACTIVE:
            raise SellerAccessRevoked(seller_id, str(status))
        blocked = await store.blocks_of(seller_id)
        return {
            "blocked_creators": blocked[SubjectKind.SELLER_BLOCKS_CREATOR],
            "blocked_by_creators": blocked[SubjectKind.CREATOR_BLOCKS_SELLER],
        }

    @api.get("/sellers/{seller_id}/access", dependencies=[SellerScope])
    async def access(seller_id: PartyId) -> dict:
        """The seller's access status, answered for every seller, revoked or not.

        This endpoint is the exception to R13's "every read endpoint for a revoked
        seller answers 403": reporting the status is its whole purpose. A 403 here
        would tell a client only that the seller is not active, without saying
        whether the shop is closed or the account deactivated, and would make the
        status unreadable exactly when it matters. It reveals nothing about the
        seller's conversations. A seller never seen is active.
        """
        return {"seller_id": seller_id, "status": str(await store.access_of(seller_id))}

    return api
