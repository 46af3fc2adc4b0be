"""GET /v1/sellers/{seller_id}/inbox, /inbox/counts and /conversations/{creator_id} (DESIGN §5)."""

import asyncio
from collections.abc import Awaitable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query

from im_contracts import InboxFolder, Label, conversation_id

from services.common.auth import SellerScope
from services.common.http import ApiError, FiniteDecimal, Int64, PartyId, not_found
from services.common.runtime import ServiceRuntime
from services.inbox_projection.domain import inbox_item, profile_panel
from services.inbox_projection.reads import EntryQuery
from services.inbox_projection.query import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    InboxFilters,
    InvalidInboxQuery,
    SortKey,
    counts_of,
    page_of,
)
from services.inbox_projection.store import InboxStore

Count = Annotated[Int64 | None, Query(ge=0)]
Amount = Annotated[FiniteDecimal | None, Query(ge=0)]


def invalid(exc: InvalidInboxQuery) -> ApiError:
    return ApiError(422, "INVALID_REQUEST", str(exc))


async def inbox_page(
    store: InboxStore, seller_id: str, folder: InboxFolder, filters: InboxFilters, limit: int, cursor: str | None
) -> dict[str, Any]:
    """One page of the inbox as the API returns it (raises InvalidInboxQuery)."""
    query = EntryQuery(folder, filters, SortKey.decode(cursor) if cursor else None)
    rows, next_cursor = page_of(await store.page(seller_id, query, limit + 1), limit)
    return {"items": [inbox_item(row) for row in rows], "next_cursor": next_cursor}


T = TypeVar("T")


def router(runtime: ServiceRuntime, store: InboxStore) -> APIRouter:
    api = APIRouter(prefix="/v1/sellers/{seller_id}")

    async def while_access_is_checked(seller_id: str, read: Awaitable[T]) -> T:
        """The read, with the seller's access (R13) checked at the same time: a
        revoked seller still gets 403, and every page waits one round trip less."""
        _, result = await asyncio.gather(runtime.access.require_active(seller_id), read)
        return result

    @api.get("/inbox", dependencies=[SellerScope])
    async def inbox(
        seller_id: PartyId,
        folder: InboxFolder = InboxFolder.MESSAGES,
        min_followers: Count = None,
        max_followers: Count = None,
        category: Annotated[list[Label] | None, Query()] = None,
        min_sales_gmv: Amount = None,
        max_sales_gmv: Amount = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
        cursor: Annotated[str | None, Query(min_length=1, max_length=512)] = None,
    ) -> dict[str, Any]:
        filters = InboxFilters(min_followers, max_followers, tuple(category or ()), min_sales_gmv, max_sales_gmv)
        try:
            return await while_access_is_checked(seller_id, inbox_page(store, seller_id, folder, filters, limit, cursor))
        except InvalidInboxQuery as exc:
            raise invalid(exc) from exc

    @api.get("/inbox/counts", dependencies=[SellerScope])
    async def counts(seller_id: PartyId) -> dict[str, int]:
        return counts_of(await while_access_is_checked(seller_id, store.counts(seller_id)))

    @api.get("/conversations/{creator_id}", dependencies=[SellerScope])
    async def conversation(seller_id: PartyId, creator_id: PartyId) -> dict[str, Any]:
        row = await while_access_is_checked(seller_id, store.load_doc(conversation_id(seller_id, creator_id)))
        if row is None or row["last_message"] is None:  # commands and flags may precede the first message
            raise not_found(f"no conversation between seller {seller_id} and creator {creator_id}")
        return {**inbox_item(row), "seller_id": seller_id, "profile_panel": profile_panel(await store.profile_doc(creator_id))}

    return api
