"""imctl driven in-process (Typer's CliRunner) against the session's suite.

The suite's HTTP apps are served on one loopback port (each under its service
name), so the CLI reaches them over real HTTP like an operator would; the CLI
runs in a worker thread with its own event loop while the suite keeps running
on the session loop."""

import asyncio
import json
import socket
import sys
from dataclasses import dataclass
from typing import Any

import pytest
import structlog
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount
from typer.testing import CliRunner, Result

from imctl.app import app
from services.common.credentials import OPS
from tests.harness import Suite


@dataclass
class Imctl:
    env: dict[str, str]

    async def __call__(self, *args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
        def invoke() -> Result:
            return CliRunner().invoke(app, list(args), env={**self.env, **(env or {})}, input=input, catch_exceptions=False)

        return await asyncio.to_thread(invoke)

    async def json(self, *args: str, code: int = 0, **options: Any) -> Any:
        """Runs with --json; checks the exit code and that stdout is one JSON document."""
        result = await self(*args, "--json", **options)
        assert result.exit_code == code, f"exit {result.exit_code}; stdout {result.stdout!r}; stderr {result.stderr!r}"
        return json.loads(result.stdout)


def refused(result: Result, code: int = 1) -> str:
    """Asserts a refusal: the exit code and one line on stderr, no traceback; returns the line."""
    assert result.exit_code == code, f"exit {result.exit_code}; stdout {result.stdout!r}; stderr {result.stderr!r}"
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("imctl: "), result.stderr
    return lines[0]


@pytest.fixture(scope="package")  # its server and logging set-up end with these tests
async def imctl(suite: Suite) -> Imctl:
    # CliRunner swaps sys.stdout while a command runs; the suite's log lines
    # (structlog's default logger looks sys.stdout up per line) keep going where they went.
    previous_logging = structlog.get_config()
    structlog.configure(logger_factory=structlog.WriteLoggerFactory(sys.stdout))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    front = Starlette(routes=[Mount(f"/{name}", app=runtime.http_app) for name, runtime in suite.runtimes.items()])
    server = uvicorn.Server(uvicorn.Config(front, lifespan="off", log_config=None, access_log=False))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.05)
    yield Imctl({
        **suite.kafka_env(OPS),
        "IMCTL_TOKEN": suite.token(),
        "MONGODB_URI": suite.mongodb_uri,
        "IM_GROUP_PREFIX": suite.prefix,
        "IM_DATABASE_PREFIX": suite.prefix,
        "IMCTL_URLS": json.dumps({name: f"http://127.0.0.1:{port}/{name}" for name in suite.runtimes}),
        "IMCTL_TIMEOUT": "30",
        "COLUMNS": "200",
    })
    server.should_exit = True
    await serving
    sock.close()
    structlog.configure(**previous_logging)
