"""Seller access as every service knows it (R13).

Each service follows SellerAccessChanged on im.moderation.events into its own
collection, so its read endpoints can answer 403 for a revoked seller without
asking moderation. Events carry occurred_at; an older event never overrides a
newer one, so redelivery and replays are harmless.
"""

from pymongo.asynchronous.collection import AsyncCollection

from im_contracts import SellerAccessChanged, SellerAccessStatus


class SellerAccessRevoked(Exception):
    def __init__(self, seller_id: str, status: str) -> None:
        super().__init__(f"seller {seller_id} has no IM access (status: {status})")
        self.seller_id = seller_id
        self.status = status


class SellerAccessView:
    def __init__(self, collection: AsyncCollection) -> None:
        self._collection = collection

    async def apply(self, event: SellerAccessChanged) -> None:
        current = await self._collection.find_one({"_id": event.seller_id})
        if current is not None and current["changed_at"] > event.occurred_at:
            return
        await self._collection.replace_one(
            {"_id": event.seller_id},
            {"status": str(event.status), "changed_at": event.occurred_at, "reason": event.reason},
            upsert=True,
        )

    async def status(self, seller_id: str) -> SellerAccessStatus:
        doc = await self._collection.find_one({"_id": seller_id}, {"status": 1})
        return SellerAccessStatus(doc["status"]) if doc else SellerAccessStatus.ACTIVE

    async def require_active(self, seller_id: str) -> None:
        status = await self.status(seller_id)
        if status is not SellerAccessStatus.ACTIVE:
            raise SellerAccessRevoked(seller_id, str(status))
