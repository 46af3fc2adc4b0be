"""The HTTP side starts serving before the service has started: a service
started during a database or broker outage answers /readyz with 503 while it
waits the outage out, and a shutdown meanwhile cancels the start cleanly."""

import asyncio
from typing import Any

import httpx

from services.common.http import create_http_app
from services.common.settings import ServiceSettings


class StartingRuntime:
    """Just what create_http_app uses of a ServiceRuntime; start() waits for a release."""

    def __init__(self) -> None:
        self.settings = ServiceSettings(service_name="unit")
        self.release = asyncio.Event()
        self.started = False
        self.stopped = False
        self.stopping = False

    async def start(self) -> None:
        await self.release.wait()
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def readiness(self) -> dict[str, dict[str, Any]]:
        ok = self.started
        return {"mongodb": {"ok": ok, "error": None if ok else "ServerSelectionTimeoutError: database away"}}


async def readyz(app: Any) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://unit") as http:
        return await http.get("/readyz")


async def test_serves_readyz_while_the_start_waits_out_an_outage() -> None:
    runtime = StartingRuntime()
    app = create_http_app(runtime, [])  # type: ignore[arg-type]
    async with app.router.lifespan_context(app):
        response = await asyncio.wait_for(readyz(app), 5)
        assert response.status_code == 503
        assert "database away" in response.json()["checks"]["mongodb"]["error"]

        runtime.release.set()
        for _ in range(100):
            if runtime.started:
                break
            await asyncio.sleep(0.01)
        assert (await readyz(app)).status_code == 200
    assert runtime.stopped


async def test_shutdown_during_the_start_cancels_it_and_stops() -> None:
    runtime = StartingRuntime()
    app = create_http_app(runtime, [])  # type: ignore[arg-type]
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0.01)
    assert runtime.stopping and runtime.stopped and not runtime.started
