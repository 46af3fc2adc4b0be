"""The private infrastructure of the fault tests: the "chaos" instance of
``deploy/local`` (its own Kafka, database (mongo-java-server) and supervisord, its own ports and
``.data/chaos/``), the five services on it as real OS processes, and the
faults done to them.

Every daemon logs to ``.data/chaos/logs/`` only; the scripts' own output goes
to ``.data/chaos/logs/scripts.log`` (never to a pipe a daemon could keep open).
``stop()`` is idempotent and also runs at interpreter exit, so an interrupted
run leaves nothing behind; ``deploy/local/run-tests.sh`` is the last safety net.

Ports come from ``deploy/local/common.sh`` (instance "chaos": Kafka 29092,
controller 29093, database 27019); ``CHAOS_KAFKA_PORT``,
``CHAOS_KAFKA_CONTROLLER_PORT`` and ``CHAOS_MONGO_PORT`` override them (the plain names are deliberately
not inherited: they may be exported for another instance). The services listen
on ``CHAOS_PORT_BASE`` + 1..5 (8201..8205).
"""

import asyncio
import atexit
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from services.common import tokens
from services.common.auth import Role
from services.common.credentials import OPS, properties_path
from services.common.kafka_client import settings_of
from services.common.principals import grant_group_prefix
from services.common.settings import KafkaSettings

log = logging.getLogger("chaos")

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY = REPO_ROOT / "deploy" / "local"
INSTANCE = "chaos"
# In services.sh's port order: IM_PORT_BASE + 1 .. + 5.
SERVICES = ("messaging", "moderation", "quota", "inbox-projection", "collaboration-card")
PIPELINE = ("moderation", "quota", "messaging")
PORT_VARIABLES = ("KAFKA_PORT", "KAFKA_CONTROLLER_PORT", "MONGO_PORT")
DEFAULT_PORTS = (29092, 29093, 27019)  # deploy/local/common.sh, instance "chaos"
# Inherited from whoever runs us, but they would point the services elsewhere.
NOT_INHERITED = (*PORT_VARIABLES, "KAFKA_BOOTSTRAP_SERVERS", "KAFKA_CLIENT_PROPERTIES", "MONGODB_URI", "IM_PORT_BASE",
                 "IM_DATABASE_PREFIX", "IM_GROUP_PREFIX", "IM_AUTO_OFFSET_RESET", "IM_HTTP_PORT", "IM_REPLICAS")


class InstanceError(RuntimeError):
    pass


@dataclass
class ChaosInstance:
    port_base: int = field(default_factory=lambda: int(os.environ.get("CHAOS_PORT_BASE", "8200")))
    prefix: str = field(default_factory=lambda: f"chaos{uuid.uuid4().hex[:8]}")
    replicas: int = 1  # instances of each send-path service (services.sh IM_REPLICAS)
    kafka_bootstrap_servers: str = ""
    mongodb_uri: str = ""
    _started: bool = False

    # --- where things are ---------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return Path(os.environ.get("SCIM_DATA") or REPO_ROOT / ".data") / INSTANCE

    @property
    def kafka_credentials(self) -> Path:
        return self.data_dir / "kafka"  # deploy/local/kafka-security.sh writes them there

    @property
    def kafka(self) -> KafkaSettings:
        """The chaos tooling's client settings: im-ops, a super user (it also publishes poison)."""
        return settings_of(OPS, self.kafka_bootstrap_servers, self.kafka_credentials)

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def auth_headers(self, ttl: int = 6 * 3600) -> dict[str, str]:
        """An ops token of this instance for the services' /v1 reads (its key is made by services.sh)."""
        directory = self.data_dir / "auth"
        tokens.init(directory)
        return {"Authorization": f"Bearer {tokens.mint(directory, Role.OPS, 'chaos', ttl)}"}

    def port(self, service: str) -> int:
        return self.port_base + 1 + SERVICES.index(service)

    def url(self, service: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port(service)}{path}"

    def database(self, service: str) -> str:
        """The service's database (ServiceSettings.database_name with our prefix)."""
        return f"{self.prefix}_{service.replace('-', '_')}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}
        for name in PORT_VARIABLES:
            if os.environ.get(f"CHAOS_{name}"):
                env[name] = os.environ[f"CHAOS_{name}"]
        env.update(
            SCIM_INSTANCE=INSTANCE,
            IM_PORT_BASE=str(self.port_base),
            IM_DATABASE_PREFIX=self.prefix,
            IM_GROUP_PREFIX=self.prefix,
            IM_REPLICAS=str(self.replicas),
            KAFKA_CLIENT_PROPERTIES=str(properties_path(self.kafka_credentials, OPS)),  # the scripts' own clients
            PYTHONPATH=f"{REPO_ROOT}:{REPO_ROOT / 'contracts'}",
        )
        return env

    # --- scripts --------------------------------------------------------------

    def _command(self, name: str, args: tuple[str, ...]) -> list[str]:
        return ["bash", str(DEPLOY / name), *args] if name.endswith(".sh") else [name, *args]

    def _open_log(self, command: list[str]) -> Any:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_dir / "scripts.log", "ab")  # noqa: SIM115 - closed by the caller
        out.write(f"\n[{time.strftime('%H:%M:%S')}] $ {' '.join(command)}\n".encode())
        out.flush()
        return out

    def _failed(self, command: list[str], returncode: int) -> InstanceError:
        logfile = self.log_dir / "scripts.log"
        return InstanceError(f"{' '.join(command)} failed ({returncode}); last lines of {logfile}:\n{tail(logfile)}")

    def script(self, name: str, *args: str, check: bool = True, timeout: float = 180) -> int:
        """Run deploy/local/<name> (or a program) with output appended to scripts.log."""
        command = self._command(name, args)
        with self._open_log(command) as out:
            try:
                done = subprocess.run(command, env=self.env(), cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                                      stdout=out, stderr=out, timeout=timeout, check=False)
            except subprocess.TimeoutExpired as exc:
                raise InstanceError(f"{' '.join(command)} took over {timeout}s; see {self.log_dir / 'scripts.log'}") from exc
        if check and done.returncode != 0:
            raise self._failed(command, done.returncode)
        return done.returncode

    async def ascript(self, name: str, *args: str, check: bool = True, timeout: float = 180) -> int:
        """script() without blocking the event loop. Cancelled (Ctrl-C), it still
        lets the script finish: a daemon it started must get its pid file, or
        nothing could stop it."""
        command = self._command(name, args)
        with self._open_log(command) as out:
            process = await asyncio.create_subprocess_exec(
                *command, env=self.env(), cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
            finished = asyncio.ensure_future(process.wait())
            try:
                returncode = await asyncio.wait_for(asyncio.shield(finished), timeout)
            except asyncio.CancelledError:
                try:
                    await asyncio.wait_for(finished, timeout)
                except BaseException:
                    process.kill()
                raise
            except TimeoutError:
                process.kill()
                raise InstanceError(f"{' '.join(command)} took over {timeout}s; see {self.log_dir / 'scripts.log'}") from None
        if check and returncode != 0:
            raise self._failed(command, returncode)
        return returncode

    # --- lifecycle ------------------------------------------------------------

    def start(self, fresh: bool = True, ready_timeout: float = 180) -> None:
        """Kafka + database + topics + the five services, all ready.

        ``fresh`` wipes the instance's Kafka and database data first (logs of the
        previous run move to ``logs.previous/``): consumer groups of a fresh
        prefix start at the earliest offset, and an old log would only be replayed.
        """
        atexit.register(self.stop)
        self._started = True
        self.stop()
        if fresh:
            for name in ("kafka", "mongo"):
                shutil.rmtree(self.data_dir / name, ignore_errors=True)
            if self.log_dir.exists():
                shutil.rmtree(self.data_dir / "logs.previous", ignore_errors=True)
                self.log_dir.rename(self.data_dir / "logs.previous")
        taken = self.ports_in_use()
        if taken:
            raise InstanceError(
                f"ports {taken} are already in use: another chaos run (another worktree?) or another program; "
                "stop it, or move this run with CHAOS_PORT_BASE and CHAOS_KAFKA_PORT, CHAOS_KAFKA_CONTROLLER_PORT, "
                "CHAOS_MONGO_PORT")
        started = time.monotonic()
        self.script("infra.sh", "start")
        values = dict(line.split("=", 1) for line in subprocess.run(
            ["bash", str(DEPLOY / "infra.sh"), "env"], env=self.env(), capture_output=True, text=True, check=True,
            stdin=subprocess.DEVNULL).stdout.split())
        self.kafka_bootstrap_servers = values["KAFKA_BOOTSTRAP_SERVERS"]
        self.mongodb_uri = values["MONGODB_URI"]
        self.script(sys.executable, "-m", "services.common.topics", "--bootstrap-servers", self.kafka_bootstrap_servers)
        grant_group_prefix(self.kafka, self.prefix)  # the services' consumer groups of this run
        self.script("services.sh", "start")
        self.wait_ready_sync(SERVICES, ready_timeout)
        log.info("chaos instance up in %.1fs: kafka %s, %s, services on %d+, prefix %s, logs %s",
                 time.monotonic() - started, self.kafka_bootstrap_servers, self.mongodb_uri,
                 self.port_base + 1, self.prefix, self.log_dir)

    def ports_in_use(self) -> list[int]:
        """The instance's ports something already listens on (its own daemons are stopped by now)."""
        ports = [self.port(service) for service in SERVICES]
        for name, default in zip(PORT_VARIABLES, DEFAULT_PORTS):
            ports.append(int(os.environ.get(f"CHAOS_{name}") or default))
        taken = []
        for port in ports:
            with socket.socket() as probe:
                probe.settimeout(0.5)
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    taken.append(port)
        return taken

    def stop(self) -> None:
        """Stop the services and both daemons of the chaos instance (idempotent)."""
        if not self._started:
            return
        self.script("services.sh", "stop", check=False, timeout=120)
        self.script("infra.sh", "stop", check=False, timeout=120)

    # --- readiness ------------------------------------------------------------

    def readiness(self, service: str, timeout: float = 5) -> tuple[int, dict[str, Any] | None]:
        """(HTTP status, body) of /readyz; status 0 when nothing answers."""
        try:
            with urllib.request.urlopen(self.url(service, "/readyz"), timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                return exc.code, json.loads(exc.read())
            except ValueError:
                return exc.code, None
        except (OSError, ValueError):
            return 0, None

    def wait_ready_sync(self, services: tuple[str, ...] = SERVICES, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        pending = list(services)
        while pending:
            pending = [s for s in pending if self.readiness(s)[0] != 200]
            if not pending:
                return
            if time.monotonic() > deadline:
                details = {s: self.readiness(s) for s in pending}
                raise InstanceError(f"not ready within {timeout}s: {details}; logs in {self.log_dir}")
            time.sleep(0.5)

    async def areadiness(self, service: str, timeout: float = 5) -> tuple[int, dict[str, Any] | None]:
        """readiness() on the event loop (cancellable)."""
        try:
            async with httpx.AsyncClient(timeout=timeout) as http:
                response = await http.get(self.url(service, "/readyz"))
        except httpx.HTTPError:
            return 0, None
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    async def wait_ready(self, services: tuple[str, ...] = SERVICES, timeout: float = 180) -> float:
        """Wait until every service answers /readyz 200; returns the seconds waited."""
        started = time.monotonic()
        pending = list(services)
        while True:
            pending = [s for s in pending if (await self.areadiness(s))[0] != 200]
            if not pending:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                details = {s: await self.areadiness(s) for s in pending}
                raise InstanceError(f"not ready within {timeout}s: {details}; logs in {self.log_dir}")
            await asyncio.sleep(0.5)

    # --- faults ---------------------------------------------------------------

    async def kill(self, service: str) -> None:
        """SIGKILL; supervisord starts it again."""
        await self.ascript("services.sh", "kill", service)

    async def terminate(self, service: str) -> None:
        """SIGTERM and start again (supervisorctl restart): a graceful handover."""
        await self.ascript("services.sh", "restart", service)

    async def infra(self, action: str, daemon: str) -> None:
        """`restart`, `stop`, `start` (or `kill`: SIGKILL, `mongo` only) one daemon (`kafka`, `mongo`) of the instance."""
        await self.ascript("infra.sh", f"{action}-{daemon}")


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
