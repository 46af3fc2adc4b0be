"""Inbox reads of one big seller: p50/p99 per folder and per combined filter.

Seeding through Kafka would take too long, so rows (bench/inbox_rows.py) are
written straight into a database of their own (prefix ``bench_inbox_...``),
then a separate inbox-projection process -- the real service module, started
here with that prefix, its own consumer groups and a free port -- serves the
reads, which are timed over HTTP one at a time. A seed is kept and reused by
later runs with the same size and row format (``--reseed-inbox`` rebuilds it)."""

import asyncio
import json
import os
import random
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from pymongo import AsyncMongoClient

from bench.inbox_rows import inbox_row, row_format
from bench.stats import LatencySummary
from bench.target import REPO_ROOT, Target
from services.common import tokens
from services.common.credentials import properties_path, service_principal
from services.common.principals import grant_group_prefix
from services.inbox_projection.store import InboxStore

BIG_SELLER = "bench-big-seller"
SEED_MARKER = "bench_seed"
SELLERS_PER_WRITE = 50
SECOND_PAGES = ("folder=messages", "messages + followers 1,000-1,010 (narrow)")


@dataclass(frozen=True)
class SeedPlan:
    rows: int  # all rows
    big_seller_rows: int  # of which the big seller's conversations
    other_sellers: int = 1000

    @property
    def prefix(self) -> str:
        return f"bench_inbox_{self.rows}_{self.big_seller_rows}_{row_format()}"

    @property
    def detail_creator(self) -> str:
        """One of the big seller's creators, half-way down its inbox."""
        return f"bench-creator-{self.big_seller_rows // 2}"

    @property
    def database(self) -> str:
        return f"{self.prefix}_inbox_projection"


async def seed(target: Target, plan: SeedPlan, *, reseed: bool = False, log=print) -> dict[str, Any]:
    """Write the rows unless a complete seed of this plan exists; returns how long it took."""
    client = AsyncMongoClient(target.mongodb_uri, tz_aware=True)
    try:
        db = client[plan.database]
        marker = await db[SEED_MARKER].find_one({"_id": "seed"})
        if marker and marker.get("complete") and not reseed:
            return {"reused": True, "seconds": marker.get("seconds"), "rows": plan.rows}
        await client.drop_database(plan.database)
        started = time.perf_counter()
        store = InboxStore(db)
        await store.ensure_indexes()
        now = datetime.now(UTC)
        rng = random.Random(11)
        written = 0
        # Seller by seller (a group at a time), so each seller's buckets are built
        # from all its rows, written with the projection's own fresh-layout writer.
        groups = [[(BIG_SELLER, range(plan.big_seller_rows))]]
        others = [(f"bench-seller-{k}", range(plan.big_seller_rows + k, plan.rows, plan.other_sellers)) for k in range(plan.other_sellers)]
        groups += [others[i : i + SELLERS_PER_WRITE] for i in range(0, len(others), SELLERS_PER_WRITE)]
        for group in groups:
            docs = [inbox_row(seller, f"bench-creator-{n}", n, rng, now) for seller, numbers in group for n in numbers]
            await store.write_fresh(docs)
            written += len(docs)
            log(f"  seeding inbox rows: {written:,} / {plan.rows:,} ({time.perf_counter() - started:.0f} s)")
        seconds = round(time.perf_counter() - started, 1)
        await db[SEED_MARKER].insert_one({"_id": "seed", "complete": True, "rows": plan.rows, "seconds": seconds})
        return {"reused": False, "seconds": seconds, "rows": plan.rows}
    finally:
        await client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def inbox_service(target: Target, plan: SeedPlan, run_id: str) -> AsyncIterator[tuple[str, int]]:
    """The real inbox-projection module in its own process, on the seeded prefix: its URL and pid."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{REPO_ROOT / 'contracts'}",
        "KAFKA_BOOTSTRAP_SERVERS": target.kafka,
        "KAFKA_CLIENT_PROPERTIES": str(properties_path(target.kafka_credentials, service_principal("inbox-projection"))),
        "MONGODB_URI": target.mongodb_uri,
        "IM_DATABASE_PREFIX": plan.prefix,
        "IM_GROUP_PREFIX": f"bench-{run_id}",
        "IM_AUTO_OFFSET_RESET": "latest",
        "IM_HTTP_PORT": str(port),
        "IM_AUTH_JWKS": str(target.auth_dir / tokens.JWKS),
        "IM_LOG_LEVEL": "WARNING",
    }
    await asyncio.to_thread(grant_group_prefix, target.kafka_settings, env["IM_GROUP_PREFIX"])
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.inbox_projection", env=env, cwd=REPO_ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await _wait_ready(url, process, timeout=900)  # startup builds the indexes on a fresh seed
        yield url, process.pid
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()


async def _wait_ready(url: str, process: asyncio.subprocess.Process, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    async with httpx.AsyncClient(timeout=2) as http:
        while time.perf_counter() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"inbox-projection exited with {process.returncode} before it was ready")
            try:
                if (await http.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)
    raise TimeoutError(f"inbox-projection at {url} not ready within {timeout}s")


def peak_rss_mib(pid: int) -> float | None:
    """The process's peak resident memory (VmHWM), MiB."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def read_queries() -> dict[str, list[tuple[str, str]]]:
    """Name -> query parameters, against /v1/sellers/{big seller}/inbox."""
    folders = {f"folder={f}": [("folder", f)] for f in ("messages", "unread", "unreplied", "starred", "archived")}
    combined = {
        "messages + followers 10k-100k": [("folder", "messages"), ("min_followers", "10000"), ("max_followers", "100000")],
        "unread + category beauty": [("folder", "unread"), ("category", "beauty")],
        "messages + 2 categories + sales GMV 1k-20k": [
            ("folder", "messages"), ("category", "beauty"), ("category", "fashion"),
            ("min_sales_gmv", "1000"), ("max_sales_gmv", "20000"),
        ],
        "unreplied + followers >= 50k + category electronics": [
            ("folder", "unreplied"), ("min_followers", "50000"), ("category", "electronics"),
        ],
        "archived + followers <= 5k": [("folder", "archived"), ("max_followers", "5000")],
        # selective filters, the worst cases for a read that scans
        "starred + category pets": [("folder", "starred"), ("category", "pets")],
        "messages + followers 1,000-1,010 (narrow)": [("folder", "messages"), ("min_followers", "1000"), ("max_followers", "1010")],
        "unread + category toys + followers 100k-200k + GMV <= 100": [
            ("folder", "unread"), ("category", "toys"), ("min_followers", "100000"), ("max_followers", "200000"), ("max_sales_gmv", "100"),
        ],
        "messages + a category no row has": [("folder", "messages"), ("category", "no-such-category")],
    }
    return {**folders, **combined}


@dataclass(frozen=True)
class ReadBudget:
    repeats: int = 500  # timed requests per query at most (a p99 of 100 is the second slowest)
    per_query_seconds: float = 10.0  # a query stops repeating after this (it keeps at least one sample)
    phase_seconds: float = 120.0  # queries not started by then are skipped
    request_timeout_seconds: float = 120.0


async def time_reads(url: str, budget: ReadBudget, *, detail_creator: str, headers: dict[str, str], limit: int = 20) -> dict[str, Any]:
    """Sequential timed GETs of every query: each folder's first page, the
    messages folder's second page through its cursor, combined filters, then
    the counts, after one untimed request of each. On a database that scans
    whole collections one read can take seconds, so every query and the phase
    are time-boxed; the first timed request of a query is dropped as warm-up
    when more than three were made.

    The client is aiohttp on one kept-alive connection: httpx spends 2-3 ms of
    its own per request here (against 0.8 ms), which the service's latency
    should not carry."""
    import aiohttp  # the bench extra

    base = f"{url}/v1/sellers/{BIG_SELLER}"
    results: dict[str, Any] = {}
    phase_ends = time.perf_counter() + budget.phase_seconds
    timeout = aiohttp.ClientTimeout(total=budget.request_timeout_seconds)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout, connector=aiohttp.TCPConnector(limit=1)) as http:
        async def timed(name: str, path: str, params: list[tuple[str, str]]) -> dict[str, Any] | None:
            if time.perf_counter() > phase_ends:
                results[name] = {"skipped": f"the phase's {budget.phase_seconds:.0f} s were spent"}
                return None
            seconds: list[float] = []
            query_ends = time.perf_counter() + budget.per_query_seconds
            body: Any = None
            while len(seconds) < budget.repeats:
                started = time.perf_counter()
                try:
                    async with http.get(path, params=params) as answer:
                        text = await answer.text()
                except TimeoutError:
                    results[name] = {"error": f"no answer within {budget.request_timeout_seconds:.0f} s"}
                    return None
                if answer.status != 200:
                    results[name] = {"error": f"HTTP {answer.status}: {text[:200]}"}
                    return None
                seconds.append(time.perf_counter() - started)
                body = json.loads(text)
                if time.perf_counter() > min(query_ends, phase_ends):
                    break
            timed_seconds = seconds[1:] if len(seconds) > 3 else seconds
            summary = LatencySummary.of_seconds(timed_seconds)
            results[name] = {"p50_ms": summary.p50, "p99_ms": summary.p99, "max_ms": summary.max, "requests": len(timed_seconds),
                             "items": len(body["items"]) if isinstance(body, dict) and "items" in body else None}
            return body

        schedule = [(name, f"{base}/inbox", [*params, ("limit", str(limit))]) for name, params in read_queries().items()]
        schedule += [("counts", f"{base}/inbox/counts", []), ("conversation detail", f"{base}/conversations/{detail_creator}", [])]
        # One untimed pass over every query first: the serving process is fresh (its
        # views empty, its consumers still joining their groups), and the reads are
        # timed as a running service answers them.
        for _, path, params in schedule:
            if time.perf_counter() > phase_ends:
                break
            async with http.get(path, params=params) as answer:
                await answer.read()
        for name, path, params in schedule:
            first = await timed(name, path, params)
            if name in SECOND_PAGES and first and first.get("next_cursor"):
                await timed(f"{name}, page 2 (cursor)", path, [*params, ("cursor", first["next_cursor"])])
    return results
