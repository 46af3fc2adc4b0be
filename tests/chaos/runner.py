"""`make chaos`: the long fault run. Starts the private chaos instance, then for
each round and each fault sends a burst of thousands of messages with the fault
injected mid-burst, checks the delivery guarantees (I1–I5) after every burst,
prints a table, stops everything, and exits 1 if any invariant was violated.

    python -m tests.chaos.runner [--sends 2000] [--conversations 200] [--rounds 1]
                                 [--faults kill:moderation,restart-kafka,...] [--rate 40] [--during-rate 20]

    make chaos CHAOS_ARGS="--sends 500 --faults poison,kill:messaging"
"""

import argparse
import asyncio
import json
import logging
import math
import signal
import sys
import time
from pathlib import Path

from tests.chaos.instance import ChaosInstance
from tests.chaos.scenario import EXTRA_FAULTS, FAULTS, RoundResult, known_fault, run_round

log = logging.getLogger("chaos")

COLUMNS = ("fault", "round", "sends", "in fault", "delivered", "rejected", "dup", "dlq/poison", "fault s", "drain s", "result")


def parse_faults(value: str) -> list[str]:
    if value == "all":
        return [*FAULTS, *(f for f in EXTRA_FAULTS if f != "none")]
    faults = [f.strip() for f in value.split(",") if f.strip()]
    unknown = [f for f in faults if not known_fault(f)]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown fault(s) {unknown}; known: {', '.join(FAULTS + EXTRA_FAULTS)}")
    return faults


def row(result: RoundResult) -> tuple[str, ...]:
    c = result.verdict.counts
    drain = "-" if math.isnan(result.drain_seconds) else f"{result.drain_seconds:.1f}"
    outcome = "ok" if result.ok else ("TIMEOUT" if result.timed_out else "VIOLATED")
    return (result.fault, str(result.round), str(c.sends), str(result.sent_during_fault), str(c.delivered), str(c.rejected), str(c.duplicates),
            f"{c.dead_letters}/{c.poison}", f"{result.fault_report.seconds:.1f}", drain, outcome)


def table(results: list[RoundResult]) -> str:
    rows = [COLUMNS, *(row(r) for r in results)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]
    line = lambda r: "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([line(rows[0]), line(tuple("-" * w for w in widths)), *(line(r) for r in rows[1:])])


async def run(args: argparse.Namespace, instance: ChaosInstance) -> list[RoundResult]:
    results: list[RoundResult] = []
    for round_no in range(1, args.rounds + 1):
        for fault in args.faults:
            results.append(await run_round(
                instance, fault, sends=args.sends, conversations=args.conversations, rate=args.rate,
                during_rate=args.during_rate, fault_at=args.fault_at, round_no=round_no,
                seed=None if args.seed is None else args.seed + len(results),
                drain_timeout=args.drain_timeout,
            ))
            print(table(results[-1:]).splitlines()[-1], flush=True)
    return results


def interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos.runner", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sends", type=int, default=2000, help="sends per burst (default 2000)")
    parser.add_argument("--conversations", type=int, default=200, help="conversations per burst (default 200)")
    parser.add_argument("--rounds", type=int, default=1, help="how many times every fault is repeated (default 1)")
    parser.add_argument("--faults", type=parse_faults, default=list(FAULTS),
                        help=f"comma-separated, or 'all' (default {','.join(FAULTS)}; also {','.join(EXTRA_FAULTS)})")
    parser.add_argument("--rate", type=float, default=40.0, help="sends published per second, 0 = as fast as possible (default 40)")
    parser.add_argument("--during-rate", type=float, default=None,
                        help="sends per second while the fault lasts, on top of --sends; 0 holds back (default half of --rate)")
    parser.add_argument("--fault-at", type=float, default=0.5, help="inject the fault once this share of the burst is published (default 0.5)")
    parser.add_argument("--drain-timeout", type=float, default=None, help="seconds to wait for every outcome (default 180 + 2 per send)")
    parser.add_argument("--seed", type=int, default=None, help="make the workload reproducible")
    parser.add_argument("--port-base", type=int, default=None, help="services listen on PORT_BASE+1..+5 (default $CHAOS_PORT_BASE or 8200)")
    parser.add_argument("--results", type=Path, default=None, help="also write the results as JSON here")
    parser.add_argument("--replicas", type=int, choices=range(1, 10), default=1, metavar="N",
                        help="instances of each send-path service (moderation, quota, messaging) sharing its partitions; "
                             "the faults hit the first (default 1)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("aiokafka", "kafka", "pymongo", "httpx"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)
    # Ctrl-C and SIGTERM both end in the finally below: the daemons are stopped.
    signal.signal(signal.SIGTERM, interrupted)

    instance = ChaosInstance(replicas=args.replicas, **({"port_base": args.port_base} if args.port_base else {}))
    started = time.monotonic()
    results: list[RoundResult] = []
    try:
        instance.start()
        print(table([]), flush=True)
        results = asyncio.run(run(args, instance))
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    finally:
        log.info("stopping the chaos instance (logs stay in %s)", instance.log_dir)
        instance.stop()

    print(f"\nchaos: {len(results)} rounds in {time.monotonic() - started:.0f}s "
          f"(sends {args.sends} x {len(args.faults)} faults x {args.rounds} rounds; logs {instance.log_dir})")
    print(table(results))
    failed = [r for r in results if not r.ok]
    for r in failed:
        print(f"\n{r.fault} round {r.round}:" + ("" if not r.timed_out else " timed out;"))
        for line in r.verdict.summary():
            print(f"  {line}")
    if args.results:
        args.results.write_text(json.dumps([
            {"fault": r.fault, "round": r.round, "ok": r.ok, "timed_out": r.timed_out, **vars(r.verdict.counts),
             "fault_seconds": r.fault_report.seconds, "drain_seconds": r.drain_seconds, "violations": r.verdict.summary()}
            for r in results], indent=2))
    print("\nchaos: " + ("every invariant held" if not failed else f"{len(failed)} round(s) VIOLATED an invariant"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
