"""python -m bench [options]: measure the suite started by `make run`.

Finds it through the same variables as deploy/local (KAFKA_BOOTSTRAP_SERVERS
or KAFKA_PORT, MONGODB_URI or MONGO_PORT, IM_PORT_BASE, SCIM_INSTANCE)."""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import uvloop

from bench import phases, report
from bench.inbox_reads import ReadBudget
from bench.stats import DivergenceRule
from bench.target import REPO_ROOT, SuiteNotRunning, Target

NOISE_NOTE = ("Measured on a 2-core machine shared with other engineers' test runs: absolute numbers are noisy; "
              "compare runs by their ratio to the baseline measured in the same run.")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--loads", default="100,300,1000", help="fixed offered loads (messages/s) reported in the latency table")
    p.add_argument("--duration", type=float, default=12, help="seconds at each fixed load")
    p.add_argument("--step-seconds", type=float, default=6, help="seconds at each ramp step between and above the fixed loads")
    p.add_argument("--start-rate", type=float, default=5, help="the pipeline ramp's first (low-load reference) rate")
    p.add_argument("--warm-up-rate", type=float, default=50, help="the pipeline's untimed load before the ramp (JIT warm-up)")
    p.add_argument("--warm-up-seconds", type=float, default=30, help="how long that load runs (0: none)")
    p.add_argument("--growth", type=float, default=1.5, help="factor between pipeline ramp steps")
    p.add_argument("--max-rate", type=float, default=6000, help="highest pipeline rate tried")
    p.add_argument("--baseline-seconds", type=float, default=5, help="seconds at each relay ramp step")
    p.add_argument("--baseline-max-rate", type=float, default=64000, help="highest relay rate tried")
    p.add_argument("--relay-mode", choices=("batch", "per-message"), default="batch",
                   help="batch: commit per fetch (the physical limit); per-message: ack and commit each record like one handler")
    p.add_argument("--relay-fetch-wait-ms", type=int, default=500, help="the relay consumers' fetch_max_wait_ms (500: aiokafka's default, as in the services)")
    p.add_argument("--max-step-downs", type=int, default=3, help="halvings of --start-rate tried when even it diverges")
    p.add_argument("--divergence-factor", type=float, default=10, help="diverged when p99 > this times the low-load p99")
    p.add_argument("--divergence-floor-ms", type=float, default=25, help="... and above this many ms")
    p.add_argument("--pairs", type=int, default=100, help="conversations opened by creators before the ramp (the warm-up burst)")
    p.add_argument("--sellers", type=int, default=20, help="T3 sellers in the mix")
    p.add_argument("--inbox-samples", type=int, default=100, help="messages per step polled until the inbox row shows them")
    p.add_argument("--inbox-rows", type=int, default=20_000, help="rows seeded for the inbox reads")
    p.add_argument("--inbox-seller-rows", type=int, default=None, help="the big seller's conversations (default: a tenth of the rows)")
    p.add_argument("--full", action="store_true", help="1,000,000 inbox rows with 100,000 for one seller (seeding takes minutes, once)")
    p.add_argument("--reseed-inbox", action="store_true", help="rewrite the inbox seed even if a complete one exists")
    p.add_argument("--read-repeats", type=int, default=500, help="timed requests per inbox query at most (p99 of 100 is the second slowest)")
    p.add_argument("--read-budget", type=float, default=10, help="seconds per inbox query after which it stops repeating")
    p.add_argument("--inbox-budget", type=float, default=120, help="seconds for all inbox queries; the rest are skipped")
    p.add_argument("--skip", default="", help="comma list of phases to skip: baseline,pipeline,inbox")
    p.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results", help="where results go")
    return p.parse_args(argv)


def options_from(args: argparse.Namespace) -> phases.Options:
    rows = 1_000_000 if args.full else args.inbox_rows
    seller_rows = 100_000 if args.full and args.inbox_seller_rows is None else (args.inbox_seller_rows or rows // 10)
    return phases.Options(
        loads=[float(x) for x in args.loads.split(",") if x.strip()],
        duration=args.duration,
        step_seconds=args.step_seconds,
        start_rate=args.start_rate,
        warm_up_rate=args.warm_up_rate,
        warm_up_seconds=args.warm_up_seconds,
        growth=args.growth,
        max_rate=args.max_rate,
        baseline_seconds=args.baseline_seconds,
        baseline_max_rate=args.baseline_max_rate,
        relay_mode=args.relay_mode,
        relay_fetch_wait_ms=args.relay_fetch_wait_ms,
        max_step_downs=args.max_step_downs,
        divergence=DivergenceRule(latency_factor=args.divergence_factor, floor_ms=args.divergence_floor_ms),
        pairs=args.pairs,
        sellers=args.sellers,
        inbox_samples=args.inbox_samples,
        inbox_rows=rows,
        inbox_seller_rows=seller_rows,
        reseed_inbox=args.reseed_inbox,
        read_budget=ReadBudget(repeats=args.read_repeats, per_query_seconds=args.read_budget, phase_seconds=args.inbox_budget),
    )


def git_commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    target = Target.from_environment()
    await target.check_ready()
    options = options_from(args)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    run_id = phases.new_run_id()
    started = time.perf_counter()
    results: dict[str, Any] = {
        "meta": {
            "stamp": time.strftime("%Y-%m-%dT%H-%M-%S"),
            "run_id": run_id,
            "commit": git_commit(),
            "cpus": os.cpu_count(),
            "load_before": load_average(),
            "command": "python -m bench " + " ".join(sys.argv[1:]),
            "target": target.describe(),
            "loads": options.loads,
            "options": {k: (v.__dict__ if hasattr(v, "__dict__") else v) for k, v in options.__dict__.items()},
            "note": NOISE_NOTE,
        }
    }
    pids = target.service_pids()
    results["meta"]["pipeline_lag_at_start"] = await target.wait_for_quiet_pipeline(300)
    results["meta"]["documents_at_start"] = await target.database_sizes()
    results["meta"]["consumer_lag_at_start"] = await target.consumer_lag()
    print(f"bench run {run_id} against {target.kafka} and services at {target.url('messaging')}..+4 (pids {pids})")
    measurements = {
        "baseline": (f"raw relay baseline ({options.relay_mode}, 3 hops, {phases.PARTITIONS} partitions):",
                     lambda: phases.measure_baseline(target, options, run_id)),
        "pipeline": ("send pipeline (realistic mix):", lambda: phases.measure_pipeline(target, options, run_id, pids)),
        "inbox_reads": ("inbox reads:", lambda: phases.measure_inbox_reads(target, options, run_id)),
    }
    for name, (title, measure) in measurements.items():
        if name.split("_")[0] in skip:
            continue
        print(title)
        try:
            results[name] = await measure()
        except Exception as exc:  # one broken phase must not cost the others' results
            print(f"  FAILED: {type(exc).__name__}: {exc}")
            results[name] = {"status": "error", "reason": f"{type(exc).__name__}: {exc}"}
    results["meta"]["documents_at_end"] = await target.database_sizes()
    results["meta"]["load_after"] = load_average()
    results["meta"]["seconds"] = round(time.perf_counter() - started, 1)
    return results


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        results = uvloop.run(run(args))  # the service's loop: the client's own overhead stays small
    except SuiteNotRunning as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    paths = report.write(results, args.out)
    print()
    print("| measure | result | target |\n|---|---|---|")
    for row in report.summary_rows(results):
        print("| " + " | ".join(row) + " |")
    print(f"\npipeline / raw relay throughput ratio: {report._fmt(report.ratio(results), '', 3)}")
    print("results: " + ", ".join(str(p.relative_to(REPO_ROOT) if p.is_relative_to(REPO_ROOT) else p) for p in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
