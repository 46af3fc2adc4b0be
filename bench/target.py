"""Where the suite under test runs and what it offers: the services' HTTP
ports (8101-8105, or IM_PORT_BASE+1..+5), Kafka, the database, the
supervisord-managed process ids and their memory."""

import asyncio
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pymongo import AsyncMongoClient
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from im_contracts.topics import ALL_TOPICS, SEND_ADMITTED, SEND_REQUESTED, SEND_SCREENED

from services.common import tokens
from services.common.auth import Role
from services.common.kafka_client import client_options
from services.common.lag import group_lags, lag_by_group
from services.common.settings import KafkaSettings
from services.registry import SERVICES, runtime_factory

REPO_ROOT = Path(__file__).resolve().parent.parent
# The send pipeline's consumer groups under `make run` (group prefix "im") and what each reads.
PIPELINE_GROUPS = {"im.moderation": SEND_REQUESTED, "im.quota": SEND_SCREENED, "im.messaging": SEND_ADMITTED}
SERVICE_OFFSETS = {"messaging": 1, "moderation": 2, "quota": 3, "inbox-projection": 4, "collaboration-card": 5}


class SuiteNotRunning(RuntimeError):
    """The suite `make bench` measures is not up."""


@dataclass(frozen=True)
class Target:
    kafka: str
    mongodb_uri: str
    port_base: int
    instance: str
    env: dict[str, str] = field(default_factory=dict)  # what deploy/local scripts need to find the suite

    @classmethod
    def from_environment(cls) -> "Target":
        env = os.environ
        kafka = env.get("KAFKA_BOOTSTRAP_SERVERS") or f"127.0.0.1:{env.get('KAFKA_PORT', '9092')}"
        mongodb = env.get("MONGODB_URI") or f"mongodb://127.0.0.1:{env.get('MONGO_PORT', '27017')}/"
        return cls(
            kafka=kafka,
            mongodb_uri=mongodb,
            port_base=int(env.get("IM_PORT_BASE", "8100")),
            instance=env.get("SCIM_INSTANCE", "dev"),
            env=dict(env),
        )

    @property
    def kafka_settings(self) -> KafkaSettings:
        """The bench's Kafka client settings: im-ops, as KAFKA_CLIENT_PROPERTIES says (`make bench` sets it)."""
        return KafkaSettings(kafka_bootstrap_servers=self.kafka)

    @property
    def kafka_credentials(self) -> Path:
        return Path(self.env.get("SCIM_DATA") or REPO_ROOT / ".data") / self.instance / "kafka"

    @property
    def auth_dir(self) -> Path:
        """The instance's token signing key and JWKS (`make run` made them)."""
        return Path(self.env.get("SCIM_DATA") or REPO_ROOT / ".data") / self.instance / "auth"

    def auth_headers(self, ttl: int = 6 * 3600) -> dict[str, str]:
        """An ops token of the instance for the services' /v1 reads."""
        return {"Authorization": f"Bearer {tokens.mint(self.auth_dir, Role.OPS, 'bench', ttl)}"}

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port_base + SERVICE_OFFSETS[service]}"

    def describe(self) -> dict[str, object]:
        return {
            "kafka": self.kafka,
            "mongodb_uri": self.mongodb_uri,
            "services": {name: self.url(name) for name in SERVICE_OFFSETS},
            "instance": self.instance,
        }

    # --- is it up? ------------------------------------------------------------

    async def check_ready(self) -> None:
        """Raise SuiteNotRunning with a readable explanation unless every service
        answers /readyz and Kafka has the suite's topics."""
        problems: list[str] = []
        async with httpx.AsyncClient(timeout=3) as http:
            for name in SERVICE_OFFSETS:
                url = f"{self.url(name)}/readyz"
                try:
                    answer = await http.get(url)
                    if answer.status_code != 200:
                        problems.append(f"{name}: {url} answered {answer.status_code} {answer.text[:200]}")
                except httpx.HTTPError as exc:
                    problems.append(f"{name}: {url} unreachable ({type(exc).__name__})")
        try:
            missing = await asyncio.wait_for(self._missing_topics(), 15)
            if missing:
                problems.append(f"kafka at {self.kafka} lacks topics: {', '.join(missing)}")
        except (KafkaError, OSError, TimeoutError) as exc:
            problems.append(f"kafka at {self.kafka} unreachable ({type(exc).__name__}: {exc})")
        if problems:
            raise SuiteNotRunning(
                "the suite is not running or not ready:\n  - "
                + "\n  - ".join(problems)
                + "\nStart it with `make run` (same SCIM_INSTANCE / KAFKA_PORT / IM_PORT_BASE as this shell)."
            )

    async def _missing_topics(self) -> list[str]:
        admin = AIOKafkaAdminClient(**client_options(self.kafka_settings), request_timeout_ms=10_000)
        await admin.start()
        try:
            existing = set(await admin.list_topics())
        finally:
            await admin.close()
        return [t for t in ALL_TOPICS if t not in existing]

    async def pipeline_lag(self) -> dict[str, int]:
        """Records each pipeline stage still has to read (a previous run's backlog)."""
        rows = await group_lags(self.kafka_settings)
        return {
            group: sum(r.lag for r in rows if r.group == group and r.topic == topic)
            for group, topic in PIPELINE_GROUPS.items()
        }

    async def consumer_lag(self, group_prefix: str = "im.") -> dict[str, int]:
        """Records not yet read, per consumer group of the suite (a group a
        removed subscriber left behind shows up here too)."""
        return lag_by_group(await group_lags(self.kafka_settings, group_prefix))

    async def wait_for_quiet_pipeline(self, timeout: float, log=print) -> dict[str, int]:
        """Wait (up to ``timeout``) until no stage has a backlog; returns the lag at the start."""
        first = lag = await self.pipeline_lag()
        deadline = asyncio.get_running_loop().time() + timeout
        if any(first.values()):
            log(f"waiting for the pipeline's backlog to drain (up to {timeout:.0f} s): {first}")
        while any(lag.values()) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(1)
            lag = await self.pipeline_lag()
        if any(lag.values()):
            log(f"warning: the pipeline still has a backlog {lag}; measurements include it")
        return first

    async def database_sizes(self, prefix: str = "im_") -> dict[str, int]:
        """Documents per collection of the suite's databases: on a database
        that scans whole collections, latency grows with them."""
        client = AsyncMongoClient(self.mongodb_uri, serverSelectionTimeoutMS=5_000)
        sizes: dict[str, int] = {}
        try:
            for name in sorted(await client.list_database_names()):
                if name.startswith(prefix):
                    db = client[name]
                    for collection in sorted(await db.list_collection_names()):
                        sizes[f"{name}.{collection}"] = await db[collection].estimated_document_count()
        finally:
            await client.close()
        return sizes

    async def http_paths(self, service: str) -> set[str]:
        """The HTTP paths the running service serves (from its OpenAPI document)."""
        async with httpx.AsyncClient(timeout=5) as http:
            answer = await http.get(f"{self.url(service)}/openapi.json")
            answer.raise_for_status()
            return set(answer.json().get("paths", {}))

    # --- processes --------------------------------------------------------------

    def service_pids(self) -> dict[str, int | None]:
        """Process id of each supervisord-managed service (None when unknown)."""
        pids: dict[str, int | None] = {}
        for name in SERVICES:
            done = subprocess.run(
                ["bash", str(REPO_ROOT / "deploy/local/services.sh"), "pid", name],
                capture_output=True, text=True, env=self.env, check=False,
            )
            value = done.stdout.strip()
            pids[name] = int(value) if done.returncode == 0 and value.isdigit() and value != "0" else None
        return pids


def consumes(service: str, topic: str) -> bool:
    """Whether this checkout's code of ``service`` subscribes to ``topic`` (the
    code `make run` runs from the same checkout). Builds the runtime without
    starting it: nothing connects."""
    runtime = runtime_factory(service)()
    return any(topic in sub.topic_names for sub in runtime.broker.subscribers)


# --- memory ----------------------------------------------------------------------


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak RSS) of a process, in KiB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def reset_peak_rss(pid: int) -> bool:
    """Reset a process's VmHWM to its current RSS (Linux clear_refs '5'), so the
    peak read later is the peak under the benchmark's load."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class MemorySampler:
    """Samples VmRSS of the services every ``interval`` seconds and keeps each
    one's peak (a check on VmHWM that needs no clear_refs)."""

    def __init__(self, pids: dict[str, int | None], interval: float = 0.5) -> None:
        self.pids = {name: pid for name, pid in pids.items() if pid}
        self.interval = interval
        self.peak_rss_kib: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._sample()

    def _sample(self) -> None:
        for name, pid in self.pids.items():
            try:
                rss = memory_kib(pid).get("VmRSS", 0)
            except OSError:
                continue
            self.peak_rss_kib[name] = max(self.peak_rss_kib.get(name, 0), rss)

    async def _run(self) -> None:
        while True:
            self._sample()
            await asyncio.sleep(self.interval)


def cpu_seconds(pid: int) -> float:
    """CPU seconds a process has used (utime + stime from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def infra_pids(target: "Target") -> dict[str, int]:
    """The local Kafka's and database's pids, when this machine runs them."""
    run_dir = Path(os.environ.get("SCIM_DATA", REPO_ROOT / ".data")) / target.instance / "run"
    pids = {}
    for name in ("kafka", "mongo"):
        try:
            pids[name] = int((run_dir / f"{name}.pid").read_text().strip())
        except (OSError, ValueError):
            pass
    return pids
