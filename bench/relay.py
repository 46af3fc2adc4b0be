"""The baseline: a raw aiokafka relay shaped like the send pipeline, on its
own topics (created here, deleted afterwards; the im.* topics are never
touched): requested -> screened -> admitted -> delivered, three relay hops,
each in its own process, the pipeline's partition count."""

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.loadgen import kafka_options
from bench.target import REPO_ROOT

STAGES = ("requested", "screened", "admitted", "delivered")


def relay_topics(run_id: str) -> list[str]:
    return [f"bench.{run_id}.{stage}" for stage in STAGES]


@contextlib.asynccontextmanager
async def bench_topics(bootstrap: str, topics: list[str], partitions: int) -> AsyncIterator[None]:
    admin = AIOKafkaAdminClient(**kafka_options(bootstrap))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, num_partitions=partitions, replication_factor=1) for t in topics])
        await _wait_for_leaders(admin, topics)
        yield
    finally:
        with contextlib.suppress(Exception):
            await admin.delete_topics(topics)
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, topics: list[str], timeout: float = 30.0) -> None:
    async def ready() -> None:
        while True:
            described = await admin.describe_topics(topics)
            if all(t["error_code"] == 0 and t["partitions"] and all(p["leader"] >= 0 for p in t["partitions"]) for t in described):
                return
            await asyncio.sleep(0.2)

    await asyncio.wait_for(ready(), timeout)


@contextlib.asynccontextmanager
async def relay_processes(bootstrap: str, topics: list[str], run_id: str, mode: str, fetch_wait_ms: int) -> AsyncIterator[list[int]]:
    """Start one relay process per hop, wait until each owns its partitions."""
    env = {**os.environ, "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{REPO_ROOT / 'contracts'}"}
    processes: list[asyncio.subprocess.Process] = []
    try:
        for hop, (source, dest) in enumerate(zip(topics, topics[1:])):
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bench.relay_hop", bootstrap, source, dest, f"bench.{run_id}.hop{hop}", mode, str(fetch_wait_ms),
                stdout=asyncio.subprocess.PIPE, env=env, cwd=REPO_ROOT,
            )
            processes.append(process)
        for process in processes:
            line = await asyncio.wait_for(process.stdout.readline(), 60)
            if line.strip() != b"ready":
                raise RuntimeError(f"relay hop {process.pid} did not start (said {line!r})")
        yield [p.pid for p in processes]
    finally:
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
