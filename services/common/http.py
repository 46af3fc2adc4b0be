"""The HTTP side of every service: health, readiness, metrics, error format,
and the 403 for revoked sellers (DESIGN §5)."""

import asyncio
from collections.abc import Callable, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any, Protocol

from annotated_types import Interval
from fastapi import APIRouter, FastAPI, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import condecimal
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.common.access import SellerAccessRevoked
from services.common.auth import install_auth
from services.common.metrics import ServiceMetrics
from services.common.settings import ServiceSettings


class HttpService(Protocol):
    """What the HTTP app needs of its service (the ServiceRuntime)."""

    settings: ServiceSettings
    metrics: ServiceMetrics
    stopping: bool
    on_fatal: Callable[[str], None]

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def readiness(self) -> dict[str, dict[str, Any]]: ...


# Seller and creator ids in paths, validated like the contract's ids (422 otherwise).
PartyId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]

# Numbers in query parameters, bounded to what the database holds and the
# contracts carry, so "1e400", "NaN" or 30 digits answer 422 instead of
# overflowing (to infinity, or past 64 bits) further down. Routes add their own
# bounds with Query(ge=…, le=…).
Int64 = Annotated[int, Interval(ge=-(2**63), lt=2**63)]
FiniteDecimal = condecimal(allow_inf_nan=False, max_digits=24, decimal_places=6)  # up to 10^18: far past any GMV


class ApiError(Exception):
    """An error answered as {"error": code, "detail": detail}."""

    def __init__(self, status_code: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.error = error
        self.detail = detail


def not_found(detail: str) -> ApiError:
    return ApiError(404, "NOT_FOUND", detail)


def _error(status_code: int, error: str, detail: Any) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status_code)


def create_http_app(runtime: HttpService, routers: Sequence[APIRouter]) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI):  # type: ignore[no-untyped-def]
        # Started in the background: uvicorn opens its port only once the
        # lifespan has yielded, and a service started during a database or
        # broker outage must still answer /readyz (503, naming the outage)
        # while it waits the outage out (I4).
        starting = asyncio.create_task(runtime.start(), name="service-start")

        def fatal_if_failed(task: "asyncio.Task[None]") -> None:
            # A start that failed for good (not an outage being waited out) is
            # fatal: run_service restarts the process, as a failed startup did before.
            if not task.cancelled() and (exc := task.exception()) is not None:
                runtime.on_fatal(f"service start failed: {type(exc).__name__}: {exc}")

        starting.add_done_callback(fatal_if_failed)
        try:
            yield
        finally:
            if not starting.done():
                runtime.stopping = True
                starting.cancel()
                await asyncio.gather(starting, return_exceptions=True)
            await runtime.stop()

    app = FastAPI(
        title=f"seller-creator-im {runtime.settings.service_name}",
        lifespan=lifespan,
    )

    install_auth(app, runtime.settings)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status_code, exc.error, exc.detail)

    @app.exception_handler(SellerAccessRevoked)
    async def access_revoked(_: Request, exc: SellerAccessRevoked) -> JSONResponse:
        return _error(403, "SELLER_ACCESS_REVOKED", str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in exc.errors()
        )
        return _error(422, "INVALID_REQUEST", problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "NOT_FOUND" if exc.status_code == 404 else "HTTP_ERROR"
        return _error(exc.status_code, code, exc.detail)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok", "service": runtime.settings.service_name}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        checks = await runtime.readiness()
        ready = all(c["ok"] for c in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    for router in routers:
        app.include_router(router)
    return app
