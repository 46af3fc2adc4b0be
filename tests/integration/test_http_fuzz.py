"""The HTTP side under schemathesis: every route of every service, from its own
OpenAPI document, against the running in-process suite. No 5xx, ever; every
4xx is {"error", "detail"}; and every numeric query parameter answers 422 to
huge, negative, non-finite and malformed values.

Requests carry an ops token (one `request_headers` fixture): the fuzzing is of
the parameters, past authentication (tests/integration/test_auth.py covers that)."""

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from services.registry import SERVICES
from tests.harness import Suite

# schemathesis's own strategies use the random module, which hypothesis warns about on every example.
pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")]

EXAMPLES_PER_OPERATION = 12
HOSTILE_NUMBERS = ["1e400", "-1e400", "NaN", "Infinity", "-Infinity", "99999999999999999999999999", "-1", "1.5e", "abc", ""]

Call = Callable[[str, str, dict[str, Any], dict[str, str]], httpx.Response]


@pytest.fixture
def request_headers(suite: Suite) -> dict[str, str]:
    """Headers every request carries: an ops token reads every /v1 route (DESIGN §7)."""
    return {"Authorization": f"Bearer {suite.token()}"}


@pytest.fixture
async def call(suite: Suite) -> Callable[[str], Call]:
    """A blocking call into a service's app on the suite's event loop, for schemathesis's
    synchronous hypothesis loop running in a worker thread."""
    loop = asyncio.get_running_loop()

    def for_service(service: str) -> Call:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=suite.runtimes[service].http_app), base_url=f"http://{service}")

        def request(method: str, path: str, query: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
            future = asyncio.run_coroutine_threadsafe(client.request(method, path, params=query, headers=headers), loop)
            return future.result(timeout=30)

        return request

    return for_service


def operations(service: str, suite: Suite) -> list[Any]:
    schema = schemathesis.openapi.from_dict(suite.runtimes[service].http_app.openapi())
    return [result.ok() for result in schema.get_all_operations()]


def assert_well_formed(response: httpx.Response, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:500]}"
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error", "detail"}, f"{what}: {body}"


@pytest.mark.parametrize("service", list(SERVICES))
async def test_no_request_makes_a_service_fail(suite: Suite, call: Callable[[str], Call], request_headers: dict[str, str], service: str) -> None:
    request = call(service)
    ops = operations(service, suite)
    assert ops, f"{service} has no /v1 routes in its OpenAPI"

    def fuzz(op: Any, mode: GenerationMode) -> None:
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy(generation_mode=mode))
        def check(case: Any) -> None:
            response = request(case.method, case.formatted_path, dict(case.query or {}), {**(case.headers or {}), **request_headers})
            assert_well_formed(response, f"{case.method} {case.formatted_path} {case.query}")

        check()

    for op in ops:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            await asyncio.to_thread(fuzz, op, mode)


def numeric_query_parameters(suite: Suite) -> list[tuple[str, str, str, list[str]]]:
    """(service, path template, parameter, path parameter names) for every number in a query string."""
    found = []
    for service in SERVICES:
        for path, methods in suite.runtimes[service].http_app.openapi()["paths"].items():
            for parameter in methods.get("get", {}).get("parameters", []):
                schema = parameter["schema"]
                kinds = {s.get("type") for s in schema.get("anyOf", [schema])}
                if parameter["in"] == "query" and kinds & {"integer", "number"}:
                    found.append((service, path, parameter["name"]))
    return found


async def test_hostile_numbers_in_any_query_parameter_answer_422(suite: Suite, request_headers: dict[str, str]) -> None:
    checked = 0
    for service, template, name in numeric_query_parameters(suite):
        path = template.replace("{seller_id}", "s1").replace("{creator_id}", "c1").replace("{card_id}", "card-1")
        async with suite.http(service) as http:
            for value in HOSTILE_NUMBERS:
                response = await http.get(path, params={name: value}, headers=request_headers)
                assert response.status_code == 422, f"{service} {path}?{name}={value}: {response.status_code} {response.text[:300]}"
                assert set(response.json()) == {"error", "detail"}
                checked += 1
    assert checked >= len(HOSTILE_NUMBERS) * 5  # inbox counts and amounts, page limits, before_seq
