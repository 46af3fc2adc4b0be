"""The measurements of one `make bench` run, each a coroutine returning a
JSON-ready dict (``{"status": "n/a", "reason": ...}`` when a feature is not
on this build)."""

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
from aiokafka import ConsumerRecord

from im_contracts import BulkSendMessage, ContractModel, SendMessage, kafka_key, utcnow
from im_contracts.topics import (
    BULK_COMPLETED,
    BULK_REQUESTED,
    DIRECTORY_EVENTS,
    SEND_DELIVERED,
    SEND_REJECTED,
    SEND_REQUESTED,
)

from bench import inbox_reads
from bench.inbox_rows import RowFormatUnknown, row_format
from bench.loadgen import Load, Sink, StepPlan, Tracker, command_id_of, new_producer, ramp
from bench.pipeline import PipelineMix
from bench.relay import bench_topics, relay_processes, relay_topics
from bench.stats import DivergenceRule, LatencySummary, StepResult, max_sustained, ramp_rates, rate_text, reference_p99
from services.common.lag import group_lags
from bench.target import MemorySampler, Target, consumes, cpu_seconds, infra_pids, memory_kib, reset_peak_rss

PARTITIONS = 6  # as services.common.topics creates the im.* topics
CONVERSATION_PATH = "/v1/sellers/{seller_id}/conversations/{creator_id}"
INBOX_PATH = "/v1/sellers/{seller_id}/inbox"


@dataclass
class Options:
    loads: list[float] = field(default_factory=lambda: [100.0, 300.0, 1000.0])
    duration: float = 12.0  # seconds at each fixed load
    step_seconds: float = 6.0  # seconds at each load between and above them
    start_rate: float = 5.0  # the ramp's first rate (its first steps give the reference p99)
    # Untimed load before the ramp: right after `make run` the JVMs' JIT compilers
    # take 35-45 s of CPU each, and the first steps' p99 (the reference the
    # divergence rule multiplies) measured that instead of the warm suite.
    warm_up_rate: float = 50.0
    warm_up_seconds: float = 30.0
    max_step_downs: int = 3  # halvings of the start rate tried when even it diverges
    growth: float = 1.5
    max_rate: float = 6000.0
    baseline_seconds: float = 5.0
    baseline_growth: float = 2.0
    baseline_max_rate: float = 64000.0
    relay_mode: str = "batch"
    relay_fetch_wait_ms: int = 500  # aiokafka's default, which the services use
    divergence: DivergenceRule = field(default_factory=DivergenceRule)
    pairs: int = 100
    sellers: int = 20
    inbox_samples: int = 100  # per step
    inbox_rows: int = 20_000
    inbox_seller_rows: int = 2_000
    reseed_inbox: bool = False
    read_budget: inbox_reads.ReadBudget = field(default_factory=inbox_reads.ReadBudget)
    bulk_timeout: float = 120.0
    backlog_timeout: float = 180.0  # after the ramp, wait this long for the last outcomes


def step_line(kind: str, result: StepResult) -> str:
    lat = result.latency
    latency = f"p50 {lat.p50:7.1f}  p95 {lat.p95:7.1f}  p99 {lat.p99:7.1f} ms" if lat else "no outcomes"
    verdict = f"  DIVERGED: {result.diverged}" if result.diverged else ""
    return (f"  {kind:8} offered {rate_text(result.offered_rate):>8}/s  out {rate_text(result.delivered_rate):>8}/s  "
            f"{latency}  rejected {result.rejected}{verdict}")


MIN_STEP_SAMPLES = 60  # a low-rate step runs long enough to give its percentiles this many outcomes
STEP_DOWN_SAMPLES = 30  # the same for the steps below the start rate, when even that diverged


def plan_for(loads: list[float], start: float, growth: float, limit: float, fixed_seconds: float, other_seconds: float) -> list[StepPlan]:
    """From ``start`` up in steps of ``growth``, through every fixed load."""
    fixed = set(loads)
    return [
        StepPlan(rate, fixed_seconds if rate in fixed else max(other_seconds, MIN_STEP_SAMPLES / rate), rate in fixed)
        for rate in ramp_rates([start, *loads], growth=growth, limit=limit)
    ]


def ramp_summary(plan: list[StepPlan], steps: list[StepResult]) -> dict[str, Any]:
    best = max_sustained(steps)
    above = [s for s in steps if s.diverged and (best is None or s.offered_rate > best.offered_rate)]
    first_diverged = min(above, key=lambda s: s.offered_rate, default=None)
    ran = {s.offered_rate for s in steps}
    return {
        "steps": [s.to_dict() for s in sorted(steps, key=lambda s: s.offered_rate)],
        "max_sustained_rate": best.offered_rate if best else None,
        "max_sustained_out_rate": best.delivered_rate if best else None,
        "first_diverged": first_diverged.to_dict() if first_diverged else None,
        "bench_bound": bool(first_diverged and first_diverged.diverged and "bench-bound" in first_diverged.diverged),
        "not_run_fixed_loads": [p.rate for p in plan if p.fixed and p.rate not in ran],
        "low_load_p99_ms": reference_p99(sorted(steps, key=lambda s: s.offered_rate)),
    }


# --- baseline --------------------------------------------------------------------------


async def measure_baseline(target: Target, options: Options, run_id: str, log=print) -> dict[str, Any]:
    """The raw relay, stepped up like the pipeline until it diverges."""
    topics = relay_topics(run_id)
    template = SendMessage(
        command_id="@ID@", occurred_at=utcnow(), seller_id="relay-seller", creator_id="relay-creator",
        sender="seller", text="Our summer campaign starts Monday; the rate is 18% on every sale through your showcase.",
    ).model_dump_json().encode()

    def build(n: int) -> tuple[str, bytes, bytes]:
        command_id = f"r{run_id}-{n}"
        return command_id, f"relay-seller-{n % 40}:relay-creator-{n % 400}".encode(), template.replace(b"@ID@", command_id.encode())

    plan = plan_for(options.loads, min(options.loads), options.baseline_growth, options.baseline_max_rate,
                    options.baseline_seconds, options.baseline_seconds)
    async with bench_topics(target.kafka, topics, PARTITIONS), relay_processes(target.kafka, topics, run_id, options.relay_mode, options.relay_fetch_wait_ms):
        tracker = Tracker()
        sink = Sink(target.kafka, [topics[-1]], f"bench.{run_id}.relay-sink", tracker,
                    lambda record: (cid, None) if (cid := command_id_of(record.value)) else None)
        producer = new_producer(target.kafka)
        await producer.start()
        await sink.start()
        try:
            load = Load(producer, topics[0], tracker, build, drain_seconds=20)
            await load.step(-1, plan[0].rate, 2)  # warm-up, not reported
            steps = await ramp(plan, lambda n, p: load.step(n, p.rate, p.seconds), options.divergence,
                               lambda r: log(step_line("relay", r)))
        finally:
            await sink.stop()
            await producer.stop()
    return {"status": "ok", "hops": len(topics) - 1, "partitions": PARTITIONS, "mode": options.relay_mode,
            "fetch_max_wait_ms": options.relay_fetch_wait_ms,
            "send_errors": load.send_errors, **ramp_summary(plan, steps)}


# --- pipeline ---------------------------------------------------------------------------


class InboxVisibility:
    """Samples delivered messages and polls the inbox-projection's conversation
    endpoint until the row shows them: publication -> row visible.

    The polls are load on the suite being measured (each costs the service its
    access, row and profile reads), so they back off: 10 ms after the first,
    then half again longer each time up to 100 ms (a visibility is known to
    within a third of itself), and a sample that would exceed `IN_FLIGHT`
    polling at once is dropped, not queued (a queued one would count its wait
    as latency). Every 10 ms for up to 16 samples at once made about 1,000
    requests a second on the inbox-projection at 100/s."""

    FIRST_POLL_SECONDS = 0.01
    MAX_POLL_SECONDS = 0.1
    BACKOFF = 1.5
    IN_FLIGHT = 8
    TIMEOUT = 10.0

    def __init__(self, url: str, samples_per_step: int, headers: dict[str, str]) -> None:
        self.http = httpx.AsyncClient(base_url=url, headers=headers, timeout=5, limits=httpx.Limits(max_connections=self.IN_FLIGHT))
        self.samples_per_step = samples_per_step
        self.every: dict[int, int] = {}  # step -> sample one in N
        self.seen: dict[int, int] = {}
        self.latencies: dict[int, list[float]] = {}
        self.not_visible: dict[int, int] = {}
        self.dropped: dict[int, int] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    def plan_step(self, step: int, expected_messages: int) -> None:
        self.every[step] = max(1, expected_messages // self.samples_per_step)

    def on_delivered(self, record: ConsumerRecord, step: int, latency: float) -> None:
        if record.topic != SEND_DELIVERED or step not in self.every:
            return
        self.seen[step] = self.seen.get(step, 0) + 1
        if self.seen[step] % self.every[step]:
            return
        if len(self.tasks) >= self.IN_FLIGHT:
            self.dropped[step] = self.dropped.get(step, 0) + 1
            return
        body = json.loads(record.value)
        intended = time.perf_counter() - latency
        task = asyncio.create_task(self._poll(step, body["seller_id"], body["creator_id"], body["seq"], intended))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _poll(self, step: int, seller: str, creator: str, seq: int, intended: float) -> None:
        path = CONVERSATION_PATH.format(seller_id=seller, creator_id=creator)
        deadline = time.perf_counter() + self.TIMEOUT
        pause = self.FIRST_POLL_SECONDS
        while time.perf_counter() < deadline:
            answer = await self.http.get(path)
            if answer.status_code == 200 and (answer.json().get("last_message") or {}).get("seq", 0) >= seq:
                self.latencies.setdefault(step, []).append(time.perf_counter() - intended)
                return
            await asyncio.sleep(pause)
            pause = min(pause * self.BACKOFF, self.MAX_POLL_SECONDS)
        self.not_visible[step] = self.not_visible.get(step, 0) + 1

    async def finish(self) -> None:
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def summary(self, step: int) -> dict[str, Any]:
        latency = LatencySummary.of_seconds(self.latencies.get(step, []))
        return {"latency": latency.__dict__ if latency else None, "not_visible_in_10s": self.not_visible.get(step, 0),
                "samples_dropped": self.dropped.get(step, 0)}

    async def close(self) -> None:
        await self.http.aclose()


def rejected_reason(record: ConsumerRecord) -> str:
    try:
        return str(json.loads(record.value).get("reason"))
    except ValueError:
        return "unreadable"


async def measure_pipeline(target: Target, options: Options, run_id: str, pids: dict[str, int | None], log=print) -> dict[str, Any]:
    """Set up quota state, warm up, then step the mix up to divergence. Also
    times a 500-creator bulk send and keeps the services' memory peaks."""
    mix = PipelineMix(run_id, sellers=options.sellers, pairs=options.pairs)
    tracker = Tracker()
    bulk = BulkWatch(mix.bulk())

    def read_outcome(record: ConsumerRecord) -> tuple[str, str | None] | None:
        if record.topic == BULK_COMPLETED:
            bulk.completed(json.loads(record.value))
            return None
        command_id = command_id_of(record.value)
        if command_id is None:
            return None
        bulk.fan_out_outcome(command_id)
        return command_id, (rejected_reason(record) if record.topic == SEND_REJECTED else None)

    sink = Sink(target.kafka, [SEND_DELIVERED, SEND_REJECTED, BULK_COMPLETED], f"bench.{run_id}.pipeline-sink", tracker, read_outcome)
    producer = new_producer(target.kafka)
    await producer.start()
    await sink.start()
    inbox_paths = await target.http_paths("inbox-projection")
    visibility = (
        InboxVisibility(target.url("inbox-projection"), options.inbox_samples, target.auth_headers()) if CONVERSATION_PATH in inbox_paths else None
    )
    if visibility:
        sink.hooks.append(visibility.on_delivered)
    result: dict[str, Any] = {"status": "ok", "mix": mix.weights.__dict__, "sellers": options.sellers, "pairs": options.pairs}
    try:
        result["setup"] = await set_up_mix(target, mix, producer, tracker, log)
        plan = plan_for(options.loads, options.start_rate, options.growth, options.max_rate, options.duration, options.step_seconds)
        load = Load(producer, SEND_REQUESTED, tracker, mix.message, drain_seconds=30,
                    headers=[("correlation_id", f"bench-{run_id}".encode())])
        if options.warm_up_seconds > 0:
            warm = await load.step(-1, options.warm_up_rate, options.warm_up_seconds)
            result["warm_up"] = {"rate": options.warm_up_rate, "seconds": options.warm_up_seconds,
                                 "p99_ms": warm.latency.p99 if warm.latency else None}
            log(f"  warm-up  {rate_text(options.warm_up_rate)}/s for {options.warm_up_seconds:.0f} s, untimed"
                f" (p99 {result['warm_up']['p99_ms']} ms)")
        sampler = MemorySampler(pids)
        peaks_reset = {name: reset_peak_rss(pid) for name, pid in pids.items() if pid}
        sampler.start()

        watched = {**{name: pid for name, pid in pids.items() if pid}, **infra_pids(target)}

        async def step(number: int, planned: StepPlan) -> StepResult:
            if visibility:
                visibility.plan_step(number, round(planned.rate * planned.seconds))
            before = {name: cpu_seconds(pid) for name, pid in watched.items()}
            result = await load.step(number, planned.rate, planned.seconds)
            used = {name: cpu_seconds(pid) - before[name] for name, pid in watched.items()}
            return replace(result, cpu_ms_per_send={name: round(1000 * s / max(1, result.completed), 2) for name, s in used.items()})

        steps = await ramp(
            plan, step, options.divergence, lambda r: log(step_line("pipeline", r)),
            step_down=lambda rate: StepPlan(rate, max(options.step_seconds, STEP_DOWN_SAMPLES / rate), False),
            max_step_downs=options.max_step_downs,
        )
        result.update(ramp_summary(plan, steps))
        result["send_errors"] = load.send_errors
        result["rejections_by_reason"] = _rejections(tracker)
        result["backlog_after_ramp"] = await _wait_for_backlog(tracker, options.backlog_timeout, log)
        if visibility:
            await visibility.finish()
            result["inbox_visible"] = {str(s.offered_rate): visibility.summary(n) for n, s in enumerate(steps)}
        else:
            result["inbox_visible"] = {"status": "n/a", "reason": f"inbox-projection serves no {CONVERSATION_PATH} yet"}
        result["bulk"] = await _bulk(target, bulk, producer, options.bulk_timeout, log)
        await sampler.stop()
        result["memory"] = _memory(pids, sampler, peaks_reset)
    finally:
        if visibility:
            await visibility.close()
        await sink.stop()
        await producer.stop()
    return result


async def _wait_for_backlog(tracker: Tracker, timeout: float, log) -> dict[str, Any]:
    """Let a diverged step's backlog drain so the next phases measure a quiet suite."""
    started = time.perf_counter()
    waiting = sum(log_.outstanding for log_ in tracker.steps.values())
    if waiting:
        log(f"  waiting for the last {waiting} outcomes (up to {timeout:.0f} s) ...")
    while sum(log_.outstanding for log_ in tracker.steps.values()) and time.perf_counter() - started < timeout:
        await asyncio.sleep(0.1)
    left = sum(log_.outstanding for log_ in tracker.steps.values())
    return {"waited_for": waiting, "seconds": round(time.perf_counter() - started, 1), "never_seen": left}


def _rejections(tracker: Tracker) -> dict[str, int]:
    total: dict[str, int] = {}
    for log in tracker.steps.values():
        for reason, count in log.rejected.items():
            total[reason] = total.get(reason, 0) + count
    return total


async def _publish(producer, topic: str, messages: list[ContractModel]) -> None:
    deliveries = [await producer.send(topic, m.model_dump_json().encode(), key=kafka_key(m)) for m in messages]
    await asyncio.gather(*deliveries)


async def set_up_mix(target: Target, mix: PipelineMix, producer, tracker: Tracker, log) -> dict[str, Any]:
    """Tiers and creator profiles first, then every pair's opening creator
    message as one burst (the warm-up; its drain time is reported too)."""
    events = mix.directory_events()
    await _publish(producer, DIRECTORY_EVENTS, events)
    quota_paths = await target.http_paths("quota")
    tiers = await _wait_for_tiers(target, mix.sellers + [mix.bulk_seller]) if "/v1/sellers/{seller_id}/quota" in quota_paths else "n/a: quota serves no /v1/sellers/{seller_id}/quota yet"
    directory_seconds, directory_left = await _wait_for_drained(target, DIRECTORY_EVENTS)
    openings = mix.opening_messages()
    started = time.perf_counter()
    for send in openings:
        tracker.sent(-1, send.command_id, time.perf_counter())
    await _publish(producer, SEND_REQUESTED, openings)
    log_ = tracker.steps[-1]
    deadline = started + 300
    while log_.outstanding and time.perf_counter() < deadline:
        await asyncio.sleep(0.02)
    seconds = time.perf_counter() - started
    if log_.outstanding:
        raise RuntimeError(f"{log_.outstanding} of {len(openings)} opening messages had no outcome within 300 s: is the pipeline consuming?")
    log(f"  setup    {len(events)} directory events, consumed by every group in {directory_seconds:.1f} s"
        f"{f' ({directory_left} left)' if directory_left else ''}; {len(openings)} opening messages as one burst, "
        f"all out in {seconds:.1f} s ({len(openings) / seconds:.0f}/s); tiers: {tiers}")
    return {"directory_events": len(events), "directory_seconds": directory_seconds, "directory_left": directory_left,
            "burst_messages": len(openings), "burst_seconds": round(seconds, 2),
            "burst_rate": round(len(openings) / seconds, 1), "burst_rejected": dict(log_.rejected), "tiers": tiers}


async def _wait_for_drained(target: Target, topic: str | None = None, timeout: float = 300.0) -> tuple[float, int]:
    """Wait until the suite's consumer groups have committed all of `topic` (every
    topic when None); (seconds, records left). The setup's profile events must not
    share the machine with the ramp, nor the pipeline's backlog with the reads."""
    started = time.perf_counter()
    while True:
        left = sum(row.lag for row in await group_lags(target.kafka_settings) if topic in (None, row.topic))
        if not left or time.perf_counter() - started > timeout:
            return round(time.perf_counter() - started, 1), left
        await asyncio.sleep(0.5)


async def _wait_for_tiers(target: Target, sellers: list[str], timeout: float = 60.0) -> str:
    deadline = time.perf_counter() + timeout
    # One request at a time: the quota read counts the week's charges, a scan on the local engine.
    async with httpx.AsyncClient(base_url=target.url("quota"), headers=target.auth_headers(), timeout=30) as http:
        pending = list(sellers)
        while pending and time.perf_counter() < deadline:
            still: list[str] = []
            for seller in pending:
                try:
                    answer = await http.get(f"/v1/sellers/{seller}/quota")
                except httpx.TimeoutException:
                    still.append(seller)
                    continue
                if answer.status_code != 200 or answer.json().get("tier") != "T3":
                    still.append(seller)
            pending = still
            if pending:
                await asyncio.sleep(0.2)
    return "all T3" if not pending else f"{len(pending)} sellers not T3 after {timeout:.0f} s"


class BulkWatch:
    """One bulk send: its fan-out's outcomes as they come, then its completion."""

    def __init__(self, command: BulkSendMessage) -> None:
        self.command = command
        self._fan_out_prefix = f"{command.command_id}:"
        self.outcomes = 0
        self.done: asyncio.Future[tuple[float, dict[str, Any]]] | None = None

    def fan_out_outcome(self, command_id: str) -> None:
        if command_id.startswith(self._fan_out_prefix):
            self.outcomes += 1

    def completed(self, body: dict[str, Any]) -> None:
        if self.done is not None and not self.done.done() and body.get("command_id") == self.command.command_id:
            self.done.set_result((time.perf_counter(), body))


async def _bulk(target: Target, bulk: BulkWatch, producer, timeout: float, log) -> dict[str, Any]:
    if not consumes("messaging", BULK_REQUESTED):
        return {"status": "n/a", "reason": f"messaging does not consume {BULK_REQUESTED} on this build"}
    creators = len(bulk.command.creator_ids)
    bulk.done = asyncio.get_running_loop().create_future()
    started = time.perf_counter()
    await _publish(producer, BULK_REQUESTED, [bulk.command])
    try:
        finished, body = await asyncio.wait_for(bulk.done, timeout)
    except TimeoutError:
        log(f"  bulk     {creators} creators: no {BULK_COMPLETED} within {timeout:.0f} s ({bulk.outcomes} fan-out outcomes seen)")
        return {"status": "timeout", "creators": creators, "fan_out_outcomes_seen": bulk.outcomes,
                "reason": f"no {BULK_COMPLETED} within {timeout:.0f} s; {bulk.outcomes} of {creators} fan-out outcomes seen"}
    seconds = round(finished - started, 3)
    log(f"  bulk     {creators} creators: completed in {seconds:.2f} s "
        f"(delivered {body.get('delivered')}, rejected {body.get('rejected')})")
    return {"status": "ok", "creators": creators, "seconds": seconds,
            "delivered": body.get("delivered"), "rejected": body.get("rejected"),
            "rejected_by_reason": body.get("rejected_by_reason")}


def _memory(pids: dict[str, int | None], sampler: MemorySampler, peaks_reset: dict[str, bool]) -> dict[str, Any]:
    services: dict[str, Any] = {}
    for name, pid in pids.items():
        if not pid:
            services[name] = {"status": "n/a", "reason": "no supervisord pid (is it running under `make run`?)"}
            continue
        try:
            now = memory_kib(pid)
        except OSError as exc:
            services[name] = {"status": "n/a", "reason": f"cannot read /proc/{pid}/status: {exc}"}
            continue
        services[name] = {
            "pid": pid,
            "peak_rss_mib": round(now["VmHWM"] / 1024, 1),
            "peak_is_since": "bench load start" if peaks_reset.get(name) else "process start",
            "sampled_peak_rss_mib": round(sampler.peak_rss_kib.get(name, 0) / 1024, 1),
            "rss_now_mib": round(now["VmRSS"] / 1024, 1),
        }
    return services


# --- inbox reads ----------------------------------------------------------------------------


async def measure_inbox_reads(target: Target, options: Options, run_id: str, log=print) -> dict[str, Any]:
    paths = await target.http_paths("inbox-projection")
    if INBOX_PATH not in paths:
        return {"status": "n/a", "reason": f"inbox-projection serves no {INBOX_PATH} yet"}
    plan = inbox_reads.SeedPlan(rows=options.inbox_rows, big_seller_rows=options.inbox_seller_rows)
    try:
        row_format()
    except RowFormatUnknown as exc:
        return {"status": "n/a", "reason": str(exc)}
    log(f"  inbox    seeding {plan.rows:,} rows ({plan.big_seller_rows:,} for one seller) into {plan.database} ...")
    seeded = await inbox_reads.seed(target, plan, reseed=options.reseed_inbox, log=log)
    # The pipeline phase leaves the suite's projections a backlog; reads timed while
    # it drains measure that backlog's load on the database, not the read path.
    backlog_seconds, backlog = await _wait_for_drained(target, timeout=600.0)
    log(f"  inbox    suite's consumers drained in {backlog_seconds:.1f} s" + (f" ({backlog} records left)" if backlog else ""))
    async with inbox_reads.inbox_service(target, plan, run_id) as (url, pid):
        reads = await inbox_reads.time_reads(url, options.read_budget, detail_creator=plan.detail_creator, headers=target.auth_headers())
        peak_rss = inbox_reads.peak_rss_mib(pid)
    log(f"  inbox    peak RSS of the serving inbox-projection process: {peak_rss} MiB")
    for name, value in reads.items():
        log(f"  inbox    {name:55} " + (
            f"p50 {value['p50_ms']:8.1f}  p99 {value['p99_ms']:8.1f} ms ({value['requests']} requests)" if "p50_ms" in value
            else value.get("error") or value.get("skipped")))
    return {"status": "ok", "served_by": "a separate inbox-projection process (this checkout) on the seeded prefix",
            "database": plan.database, "rows": plan.rows, "seller_conversations": plan.big_seller_rows,
            "seed": seeded, "backlog_wait_seconds": backlog_seconds, "backlog_left": backlog, "reads": reads, "peak_rss_mib": peak_rss}


def new_run_id() -> str:
    return f"{time.strftime('%m%d%H%M')}{uuid.uuid4().hex[:4]}"
