"""Query numbers are bounded in one place: what the database cannot hold, or
what is not a finite number, answers 422 {"error", "detail"} (issue 12)."""

from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Query

from services.common.http import FiniteDecimal, Int64
from services.common.runtime import ServiceRuntime
from services.common.settings import ServiceSettings


def app_with_numbers():  # type: ignore[no-untyped-def]
    runtime = ServiceRuntime(ServiceSettings(service_name="unit"))
    router = APIRouter()

    @router.get("/numbers")
    async def numbers(
        count: Annotated[Int64 | None, Query(ge=0)] = None, amount: Annotated[FiniteDecimal | None, Query(ge=0)] = None
    ) -> dict[str, str]:
        return {"count": str(count), "amount": str(amount)}

    runtime.serve(router)
    return runtime.http_app


@pytest.mark.parametrize(
    "query",
    ["amount=1e400", "amount=NaN", "amount=Infinity", "amount=-1", "amount=1e-400", "amount=" + "9" * 26,
     "count=" + "9" * 20, "count=-1", "count=1e3", "count=NaN"],
)
async def test_a_hostile_number_answers_422(query: str) -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app_with_numbers()), base_url="http://unit") as http:
        response = await http.get(f"/numbers?{query}")
    assert response.status_code == 422
    assert set(response.json()) == {"error", "detail"}


async def test_ordinary_numbers_pass() -> None:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app_with_numbers()), base_url="http://unit") as http:
        response = await http.get("/numbers?count=9223372036854775807&amount=1234.50")
    assert response.json() == {"count": "9223372036854775807", "amount": "1234.50"}
