"""python -m bench.profile: where the pipeline's time goes under a fixed load.

Runs the realistic mix at ``--rate`` for ``--seconds`` against the suite of
`make run` and, over that window, records

- a py-spy CPU profile of each pipeline service (``py-spy record --format raw``,
  idle time excluded), summarised as the functions with the most samples,
  by self time and by package (inclusive);
- CPU seconds used per delivered message by each service, Kafka and the database
  (/proc/<pid>/stat);
- the mean handler time per consumed topic (im_handler_seconds from /metrics):
  database round trips and the publish acknowledgement included;
- the database commands per delivered message by service, collection and
  command, with their mean round trip (im_database_commands_total).

Writes <out>/<service>.raw (flame-graph input) and <out>/summary.md."""

import argparse
import asyncio
import os
import re
import shutil
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from im_contracts.topics import SEND_DELIVERED, SEND_REJECTED, SEND_REQUESTED

from bench.loadgen import Load, Sink, Tracker, command_id_of, new_producer
from bench.phases import new_run_id, rejected_reason, set_up_mix
from bench.pipeline import PipelineMix
from bench.target import REPO_ROOT, SuiteNotRunning, Target, cpu_seconds, infra_pids

PIPELINE = ("moderation", "quota", "messaging")
HANDLER_METRIC = re.compile(r'^im_handler_seconds_(sum|count)\{topic="([^"]+)"\} ([0-9.e+-]+)$', re.M)
COMMAND_METRIC = re.compile(r'^im_database_command(s|_seconds)_total\{collection="([^"]*)",command="([^"]+)"\} ([0-9.e+-]+)$', re.M)
FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


Totals = dict[str, dict[Any, list[float]]]  # kind -> key -> [seconds, count]


async def metric_totals(target: Target, service: str) -> Totals:
    """From a service's /metrics: handler (seconds, messages) per topic, and
    database (seconds, commands) per (collection, command)."""
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(f"{target.url(service)}/metrics")).text
    handlers: dict[Any, list[float]] = {}
    for kind, topic, value in HANDLER_METRIC.findall(text):
        handlers.setdefault(topic, [0.0, 0.0])[0 if kind == "sum" else 1] = float(value)
    commands: dict[Any, list[float]] = {}
    for kind, collection, command, value in COMMAND_METRIC.findall(text):
        commands.setdefault((collection, command), [0.0, 0.0])[0 if kind == "_seconds" else 1] = float(value)
    return {"handlers": handlers, "commands": commands}


def growth(before: Totals, after: Totals, kind: str) -> dict[Any, tuple[float, float]]:
    """(seconds, count) added over the window, per key, where the count grew."""
    grown = {}
    for key, (s1, c1) in after[kind].items():
        s0, c0 = before[kind].get(key, (0.0, 0.0))
        if c1 > c0:
            grown[key] = (s1 - s0, c1 - c0)
    return grown


def package_of(path: str) -> str:
    """A readable owner of a frame's file, as py-spy names it relative to its
    sys.path entry: the distribution or stdlib package ("aiokafka",
    "asyncio"), or the suite's module ("services/common/consuming")."""
    path = path.split("site-packages/", 1)[-1]
    parts = path.split("/")
    if parts[0] in ("services", "im_contracts", "bench") and len(parts) > 1:
        return "/".join(parts[:3]).removesuffix(".py")
    return parts[0].removesuffix(".py")


IDLE_LEAVES = ("EpollSelector.select",)  # the event loop waiting for I/O


def summarise_raw(path: Path, top: int = 15) -> dict[str, Any]:
    """Self samples per function and inclusive samples per package from a
    py-spy raw (collapsed stacks) file; samples waiting in the event loop's
    select are counted apart (py-spy cannot always tell them idle)."""
    self_samples: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")[1:]  # the first entry names the process/thread
        parsed = [FRAME.match(f) for f in frames]
        leaf = parsed[-1] if parsed and parsed[-1] else None
        if leaf and leaf["function"] in IDLE_LEAVES:
            idle += count
            continue
        if leaf:
            self_samples[f"{leaf['function']} ({package_of(leaf['file'])})"] += count
        # Inclusive shares count only what runs inside an event-loop callback,
        # not the entry frames (runpy, uvicorn, asyncio.run) every sample has.
        running = next((i for i, m in enumerate(parsed) if m and m["function"] == "Handle._run"), -1)
        for package in {package_of(m["file"]) for m in parsed[running + 1:] if m}:
            packages[package] += count
    share = (lambda n: round(100 * n / total, 1)) if total else (lambda n: 0.0)
    return {
        "samples": total,
        "idle_percent": share(idle),
        "self": [(name, share(n)) for name, n in self_samples.most_common(top)],
        "inclusive_by_package": [(name, share(n)) for name, n in packages.most_common(top)],
    }


async def profile(args: argparse.Namespace) -> Path:
    target = Target.from_environment()
    await target.check_ready()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise SystemExit("py-spy is not installed: make bench installs it (pyproject extra `bench`)")
    out = args.out or REPO_ROOT / "bench" / "results" / f"profile-{time.strftime('%Y-%m-%dT%H-%M-%S')}"
    out.mkdir(parents=True, exist_ok=True)
    await target.wait_for_quiet_pipeline(300)
    pids = {name: pid for name, pid in target.service_pids().items() if name in args.services and pid}
    run_id = new_run_id()
    mix = PipelineMix(run_id, sellers=20, pairs=args.pairs)
    tracker = Tracker()
    sink = Sink(target.kafka, [SEND_DELIVERED, SEND_REJECTED], f"bench.{run_id}.profile-sink", tracker,
                lambda r: (cid, rejected_reason(r) if r.topic == SEND_REJECTED else None) if (cid := command_id_of(r.value)) else None)
    producer = new_producer(target.kafka)
    await producer.start()
    await sink.start()
    try:
        await set_up_mix(target, mix, producer, tracker, print)
        load = Load(producer, SEND_REQUESTED, tracker, mix.message, drain_seconds=60)
        before_metrics = {s: await metric_totals(target, s) for s in pids}
        watched = {**pids, **infra_pids(target)}
        before_cpu = {name: cpu_seconds(pid) for name, pid in watched.items()}
        recorders = [
            await asyncio.create_subprocess_exec(
                py_spy, "record", "--pid", str(pid), "--duration", str(int(args.seconds)), "--rate", str(args.sample_rate),
                "--format", "raw", "--output", str(out / f"{name}.raw"), "--nonblocking",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            )
            for name, pid in pids.items()
        ]
        print(f"profiling {', '.join(pids)} for {args.seconds:.0f} s at {args.rate}/s ...")
        result = await load.step(0, args.rate, args.seconds)
        cpu = {name: cpu_seconds(pid) - before_cpu[name] for name, pid in watched.items()}
        await asyncio.gather(*(r.wait() for r in recorders))
        after_metrics = {s: await metric_totals(target, s) for s in pids}
    finally:
        await sink.stop()
        await producer.stop()
    delivered = max(1, result.completed - result.rejected)
    lines = [
        f"# Pipeline profile {time.strftime('%Y-%m-%d %H:%M')}",
        "",
        f"Command: `python -m bench.profile {' '.join(sys.argv[1:])}`; load average {[round(x, 2) for x in os.getloadavg()]} "
        f"on {os.cpu_count()} cores. Offered {args.rate}/s for {result.seconds} s; {result.completed} outcomes "
        f"({result.delivered_rate}/s out), p50 {result.latency.p50 if result.latency else 'n/a'} ms, "
        f"p99 {result.latency.p99 if result.latency else 'n/a'} ms.",
        "",
        "## CPU per delivered message",
        "",
        "| process | CPU s over the window | CPU ms per message | share of one core |",
        "|---|---|---|---|",
        *[f"| {name} | {sec:.2f} | {1000 * sec / delivered:.2f} | {100 * sec / result.seconds:.0f} % |" for name, sec in cpu.items()],
        "",
        "## Mean handler time per consumed topic (database round trips and publish ack included)",
        "",
        "| service | topic | messages | mean ms |",
        "|---|---|---|---|",
    ]
    for service in pids:
        for topic, (seconds, count) in growth(before_metrics[service], after_metrics[service], "handlers").items():
            lines.append(f"| {service} | {topic} | {count:.0f} | {1000 * seconds / count:.2f} |")
    lines += ["", "## Database commands per delivered message (answer awaited; from im_database_commands_total)", "",
              "| service | collection | command | per message | mean ms |", "|---|---|---|---|---|"]
    for service in pids:
        grown = growth(before_metrics[service], after_metrics[service], "commands")
        for (collection, command), (seconds, count) in sorted(grown.items(), key=lambda kv: -kv[1][1]):
            lines.append(f"| {service} | {collection} | {command} | {count / delivered:.2f} | {1000 * seconds / count:.2f} |")
        lines.append(f"| {service} | all | all | {sum(c for _, c in grown.values()) / delivered:.2f} | |")
    for name in pids:
        raw = out / f"{name}.raw"
        if not raw.exists():
            lines += ["", f"## {name}: no py-spy output (ptrace not permitted?)"]
            continue
        summary = summarise_raw(raw)
        lines += ["", f"## {name}: {summary['samples']} samples, {summary['idle_percent']} % in the event loop's select (waiting)", "", "| self time: function (package) | % |", "|---|---|",
                  *[f"| `{n}` | {p} |" for n, p in summary["self"]], "", "| inclusive: package | % |", "|---|---|",
                  *[f"| `{n}` | {p} |" for n, p in summary["inclusive_by_package"]]]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    return out


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=10, help="offered messages per second")
    p.add_argument("--seconds", type=float, default=30, help="how long to load and record")
    p.add_argument("--sample-rate", type=int, default=100, help="py-spy samples per second")
    p.add_argument("--pairs", type=int, default=40, help="conversations opened before the load")
    p.add_argument("--services", default=",".join(PIPELINE), type=lambda s: tuple(s.split(",")))
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    try:
        out = asyncio.run(profile(args))
    except SuiteNotRunning as exc:
        print(f"bench.profile: {exc}", file=sys.stderr)
        return 2
    print((out / "summary.md").read_text())
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
