"""Conversation history: newest page first, stable paging by before_seq (R1)."""

import pytest

from tests.harness import Suite, unique
from tests.integration.inbox_projection.support import converse, set_access, wait_for_status

pytestmark = pytest.mark.integration


async def test_pages_run_newest_first_and_stay_stable_as_messages_arrive(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    delivered = await converse(suite, seller, creator, "creator", "seller", "creator", "seller", "creator", "seller", "creator")
    path = f"/v1/conversations/{seller}/{creator}/messages"
    async with suite.http("messaging") as http:
        first = (await http.get(path, params={"limit": 3})).json()
        assert [m["seq"] for m in first["items"]] == [7, 6, 5] and first["next_before_seq"] == 5

        await converse(suite, seller, creator, "seller")  # seq 8 arrives between pages
        second = (await http.get(path, params={"limit": 3, "before_seq": first["next_before_seq"]})).json()
        assert [m["seq"] for m in second["items"]] == [4, 3, 2] and second["next_before_seq"] == 2
        last = (await http.get(path, params={"limit": 3, "before_seq": 2})).json()
        assert [m["seq"] for m in last["items"]] == [1] and last["next_before_seq"] is None

        everything = (await http.get(path, params={"limit": 200})).json()
        assert [m["seq"] for m in everything["items"]] == list(range(8, 0, -1))
        item = everything["items"][-1]
        first_delivery = delivered[0].model_dump(mode="json")
        assert item == first_delivery  # every field of MessageDelivered, as published
        assert (await http.get(path, params={"before_seq": 9, "limit": 2})).json()["items"][0]["seq"] == 8


async def test_an_empty_conversation_has_an_empty_page(suite: Suite) -> None:
    async with suite.http("messaging") as http:
        page = (await http.get(f"/v1/conversations/{unique('s')}/{unique('c')}/messages")).json()
    assert page == {"items": [], "next_before_seq": None}


async def test_a_revoked_seller_gets_403_and_active_restores(suite: Suite) -> None:
    seller, creator = unique("s"), unique("c")
    await converse(suite, seller, creator, "creator")
    path = f"/v1/conversations/{seller}/{creator}/messages"
    async with suite.http("messaging") as http:
        await set_access(suite, seller, "deactivated")
        response = await wait_for_status(http, path, 403)
        assert response.json()["error"] == "SELLER_ACCESS_REVOKED"
        await set_access(suite, seller, "active")
        assert (await wait_for_status(http, path, 200)).json()["items"][0]["seq"] == 1


@pytest.mark.parametrize(
    "params",
    [{"before_seq": 0}, {"before_seq": -3}, {"before_seq": "x"}, {"limit": 0}, {"limit": 201}, {"limit": "all"}],
)
async def test_bad_paging_parameters_are_422(suite: Suite, params: dict) -> None:
    async with suite.http("messaging") as http:
        response = await http.get(f"/v1/conversations/{unique('s')}/{unique('c')}/messages", params=params)
    assert response.status_code == 422 and response.json()["error"] == "INVALID_REQUEST"


async def test_bad_ids_are_422(suite: Suite) -> None:
    async with suite.http("messaging") as http:
        assert (await http.get("/v1/conversations/bad!seller/c1/messages")).status_code == 422
        assert (await http.get(f"/v1/conversations/s1/{'c' * 65}/messages")).status_code == 422
