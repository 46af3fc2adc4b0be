"""Quota's read API (DESIGN §5): the seller's quota and one creator's outreach
standing, judged at a "now" the test chooses (reads use the wall clock)."""

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from im_contracts import SellerAccessChanged, SellerAccessStatus, new_event_id, utcnow
from im_contracts.topics import MODERATION_EVENTS
from services.quota.api import wall_clock
from tests.harness import Suite, unique
from tests.integration.quota.support import creator_send, report_gmv, report_profiles, send_and_wait, seller_send, wait_until

pytestmark = pytest.mark.integration

WEDNESDAY = datetime(2031, 5, 14, 18, 0, tzinfo=UTC)  # week of Sunday 2031-05-11 (PDT)
WEEK = {"week_start": "2031-05-11T00:00:00-07:00", "resets_at": "2031-05-18T00:00:00-07:00"}


@pytest.fixture
async def api(suite: Suite) -> AsyncIterator[Callable[[str], object]]:
    """GET on quota's API with "now" set to WEDNESDAY."""
    app = suite.runtimes["quota"].http_app
    app.dependency_overrides[wall_clock] = lambda: WEDNESDAY
    async with suite.http("quota") as http:
        async def get(path: str) -> httpx.Response:
            return await http.get(path)

        yield get
    app.dependency_overrides.pop(wall_clock)


async def test_a_seller_never_seen_is_tier_zero_with_its_whole_starter_pack(api) -> None:
    seller = unique("s")
    response = await api(f"/v1/sellers/{seller}/quota")
    assert response.status_code == 200
    assert response.json() == {
        "seller_id": seller, "tier": "T0", "gmv_30d": None, **WEEK,
        "weekly_limit": 0, "used": 0, "remaining": 1000, "starter_pack_remaining": 1000,
        "max_creator_followers": 20000,
    }


async def test_quota_counts_this_weeks_charges_of_a_tier_one_seller(suite: Suite, api) -> None:
    seller, creators = unique("s"), [unique("c") for _ in range(3)]
    await report_gmv(suite, seller, "1500")
    await report_profiles(suite, dict.fromkeys(creators, 1000))
    for creator in creators[:2]:
        assert (await send_and_wait(suite, seller_send(seller, creator, at=WEDNESDAY))).quota_charged
    assert (await send_and_wait(suite, seller_send(seller, creators[2], at=WEDNESDAY + timedelta(weeks=1)))).quota_charged

    assert (await api(f"/v1/sellers/{seller}/quota")).json() == {
        "seller_id": seller, "tier": "T1", "gmv_30d": "1500.00", **WEEK,
        "weekly_limit": 50, "used": 2, "remaining": 48, "starter_pack_remaining": 1000,
        "max_creator_followers": 20000,
    }


async def test_top_tier_is_unlimited_and_uncapped(suite: Suite, api) -> None:
    seller = unique("s")
    await report_gmv(suite, seller, "50000.01")
    body = (await api(f"/v1/sellers/{seller}/quota")).json()
    assert (body["tier"], body["weekly_limit"], body["remaining"], body["max_creator_followers"]) == ("T3", None, None, None)


async def test_tier_zero_spends_its_starter_pack(suite: Suite, api) -> None:
    seller, creator = unique("s"), unique("c")
    await report_profiles(suite, {creator: 1})
    assert (await send_and_wait(suite, seller_send(seller, creator, at=WEDNESDAY - timedelta(weeks=3)))).quota_charged
    body = (await api(f"/v1/sellers/{seller}/quota")).json()
    assert (body["tier"], body["used"], body["remaining"], body["starter_pack_remaining"]) == ("T0", 0, 999, 999)


async def test_outreach_standing_follows_the_conversation(suite: Suite, api) -> None:
    seller, creator, stranger = unique("s"), unique("c"), unique("stranger")
    await report_gmv(suite, seller, "99")
    await report_profiles(suite, {creator: 15_000})
    path = f"/v1/sellers/{seller}/creators/{creator}/outreach"

    def standing(connected: bool, charged: bool, unreplied: int, blocked: str | None) -> dict:
        return {
            "seller_id": seller, "creator_id": creator, "connected": connected, "charged_this_week": charged,
            "seller_messages_without_reply": unreplied, "max_without_reply": 5,
            "can_send": blocked is None, "blocked_reason": blocked,
        }

    assert (await api(path)).json() == standing(False, False, 0, None)
    for _ in range(5):
        await send_and_wait(suite, seller_send(seller, creator, at=WEDNESDAY))
    assert (await api(path)).json() == standing(False, True, 5, "REPLY_REQUIRED")
    await send_and_wait(suite, creator_send(seller, creator, at=WEDNESDAY))
    assert (await api(path)).json() == standing(True, True, 0, None)

    unknown = (await api(f"/v1/sellers/{seller}/creators/{stranger}/outreach")).json()
    assert (unknown["can_send"], unknown["blocked_reason"]) == (False, "CREATOR_NOT_ELIGIBLE")


async def test_reads_of_a_revoked_seller_are_refused(suite: Suite, api) -> None:
    seller = unique("s")
    await suite.publish(MODERATION_EVENTS, SellerAccessChanged(
        event_id=new_event_id(), occurred_at=utcnow(), command_id=unique("cmd"),
        seller_id=seller, status=SellerAccessStatus.SHOP_CLOSED,
    ))
    access = suite.runtimes["quota"].access
    await wait_until(lambda: _is_revoked(access, seller), "quota to learn the seller's access")
    for path in (f"/v1/sellers/{seller}/quota", f"/v1/sellers/{seller}/creators/c1/outreach"):
        response = await api(path)
        assert response.status_code == 403 and response.json()["error"] == "SELLER_ACCESS_REVOKED"


async def test_malformed_ids_are_422(api) -> None:
    response = await api("/v1/sellers/not%20an%20id/quota")
    assert response.status_code == 422 and response.json()["error"] == "INVALID_REQUEST"


async def _is_revoked(access, seller: str) -> bool:
    return await access.status(seller) is not SellerAccessStatus.ACTIVE
