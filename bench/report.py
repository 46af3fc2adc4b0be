"""Writes one run's results: <stamp>.json (everything), <stamp>.md (tables)
and <stamp>.png (latency percentiles against offered load)."""

import json
from pathlib import Path
from typing import Any

from bench.stats import rate_text

TARGETS = {  # the send-pipeline issue's (14) and the inbox issue's (15)
    "pipeline_rate": 1000.0,
    "ratio": 0.1,
    "p99_at_300_ms": 50.0,
    "inbox_p99_ms": 20.0,
    "bulk_seconds": 2.0,
    "rss_mib": 150.0,
}


def _fmt(value: Any, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{unit}"
    return f"{value}{unit}"


def _status(section: dict[str, Any] | None) -> str | None:
    """The 'n/a: reason' of a section that was not measured, else None."""
    if not section:
        return "n/a: not run"
    if section.get("status") not in (None, "ok"):
        return f"{section['status']}: {section.get('reason', '')}"
    return None


def fixed_load_step(section: dict[str, Any], rate: float) -> dict[str, Any] | None:
    return next((s for s in section.get("steps", []) if s["offered_rate"] == rate), None)


def ratio(results: dict[str, Any]) -> float | None:
    base = (results.get("baseline") or {}).get("max_sustained_rate")
    pipe = (results.get("pipeline") or {}).get("max_sustained_rate")
    return round(pipe / base, 3) if base and pipe else None


def summary_rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    baseline, pipeline = results.get("baseline") or {}, results.get("pipeline") or {}
    rows: list[tuple[str, str, str]] = []

    def ramp_text(section: dict[str, Any]) -> str:
        if (na := _status(section)) is not None:
            return na
        best = section.get("max_sustained_rate")
        text = f"{rate_text(best)}/s" if best else "none of the steps held"
        diverged = section.get("first_diverged")
        if diverged:
            text += f" (at {rate_text(diverged['offered_rate'])}/s: {diverged['diverged']})"
        else:
            text += " (never diverged up to the ramp's limit: a lower bound)"
        return text

    rows.append(("raw relay (baseline) max sustained", ramp_text(baseline), ""))
    rows.append(("pipeline max sustained", ramp_text(pipeline), f">= {TARGETS['pipeline_rate']:,.0f}/s"))
    r = ratio(results)
    rows.append(("pipeline / baseline", _fmt(r, "", 3), f">= {TARGETS['ratio']}"))
    at300 = fixed_load_step(pipeline, 300.0) if not _status(pipeline) else None
    if at300 and at300.get("latency"):
        text = _fmt(at300["latency"]["p99"], " ms") + (f" (diverged: {at300['diverged']})" if at300.get("diverged") else "")
    elif not _status(pipeline) and 300.0 in pipeline.get("not_run_fixed_loads", []):
        text = "not run: above the max sustained rate"
    else:
        text = _status(pipeline) or "n/a"
    rows.append(("pipeline p99 to delivered at 300/s", text, f"<= {TARGETS['p99_at_300_ms']:.0f} ms"))
    inbox = results.get("inbox_reads") or {}
    if (na := _status(inbox)) is None:
        worst = max((v["p99_ms"], k) for k, v in inbox["reads"].items() if "p99_ms" in v)
        rows.append(("inbox read p99 (worst query)", f"{worst[0]:.1f} ms ({worst[1]})", f"<= {TARGETS['inbox_p99_ms']:.0f} ms"))
    else:
        rows.append(("inbox read p99 (worst query)", na, f"<= {TARGETS['inbox_p99_ms']:.0f} ms"))
    bulk = pipeline.get("bulk") if pipeline else None
    rows.append(("500-creator bulk to BulkSendCompleted", _status(bulk) or _fmt(bulk["seconds"], " s", 2), f"<= {TARGETS['bulk_seconds']:.0f} s"))
    memory = pipeline.get("memory") or {}
    peaks = [(v["peak_rss_mib"], k) for k, v in memory.items() if "peak_rss_mib" in v]
    rows.append(("max peak RSS of a service", f"{max(peaks)[0]:.1f} MiB ({max(peaks)[1]})" if peaks else "n/a", f"<= {TARGETS['rss_mib']:.0f} MB"))
    return rows


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    lines = [
        f"# Benchmark {meta['stamp']}",
        "",
        f"Commit `{meta['commit']}`; {meta['cpus']} cores; load average before {meta['load_before']}, after {meta['load_after']}; "
        f"took {meta['seconds']:.0f} s. Command: `{meta['command']}`.",
        "",
        *([f"> {meta['note']}", ""] if meta.get("note") else []),
        "Documents in the suite's databases at the start: "
        + (", ".join(f"{k} {v:,}" for k, v in meta.get("documents_at_start", {}).items() if v) or "none")
        + f"; pipeline backlog at the start: {meta.get('pipeline_lag_at_start')}"
        + "; other consumer groups' lag at the start: "
        + (", ".join(f"{k} {v:,}" for k, v in (meta.get("consumer_lag_at_start") or {}).items() if v) or "none") + ".",
        "",
        "## Summary",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in summary_rows(results)],
        "",
        "## Latency at fixed offered loads (publication -> outcome, ms)",
        "",
        "| offered/s | relay p50 / p95 / p99 | pipeline p50 / p95 / p99 | pipeline out/s | inbox row visible p50 / p95 / p99 |",
        "|---|---|---|---|---|",
    ]
    baseline, pipeline = results.get("baseline") or {}, results.get("pipeline") or {}
    visible = pipeline.get("inbox_visible") or {}
    for rate in meta["loads"]:
        relay_step, pipe_step = fixed_load_step(baseline, rate), fixed_load_step(pipeline, rate)
        vis = visible.get(str(rate)) if isinstance(visible, dict) and "status" not in visible else None
        vis_text = (
            "n/a" if not vis or not vis.get("latency")
            else "{p50} / {p95} / {p99}".format(**vis["latency"]) + (f" ({vis['not_visible_in_10s']} not seen in 10 s)" if vis["not_visible_in_10s"] else "")
        )
        if "status" in visible:
            vis_text = "n/a"
        lines.append(
            f"| {rate:,.0f} | {_triple(relay_step)} | {_triple(pipe_step)} | "
            f"{rate_text(pipe_step['delivered_rate']) if pipe_step else 'not run (above max sustained)'} | {vis_text} |"
        )
    if isinstance(visible, dict) and visible.get("status") == "n/a":
        lines += ["", f"Inbox row visibility: n/a ({visible['reason']})."]
    for title, section in (("Raw relay ramp", baseline), ("Pipeline ramp", pipeline)):
        lines += ["", f"## {title}", ""]
        if (na := _status(section)) is not None:
            lines.append(na)
            continue
        lines += ["| offered/s | generated/s | out/s | sent | rejected | p50 | p95 | p99 | max (ms) | verdict | CPU ms per send |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for s in section["steps"]:
            lat = s["latency"] or {}
            cpu = ", ".join(f"{name} {ms}" for name, ms in (s.get("cpu_ms_per_send") or {}).items()) or "n/a"
            lines.append(
                f"| {rate_text(s['offered_rate'])} | {rate_text(s['achieved_offer_rate'])} | {rate_text(s['delivered_rate'])} | {s['sent']:,} | {s['rejected']} | "
                f"{lat.get('p50', 'n/a')} | {lat.get('p95', 'n/a')} | {lat.get('p99', 'n/a')} | {lat.get('max', 'n/a')} | {s['diverged'] or 'ok'} | {cpu} |"
            )
    if pipeline.get("setup"):
        setup = pipeline["setup"]
        lines += ["", f"Warm-up burst: {setup['burst_messages']} messages published at once, all out in {setup['burst_seconds']} s "
                  f"({setup['burst_rate']}/s). Quota tiers: {setup['tiers']}. Rejections during the ramp: {pipeline.get('rejections_by_reason') or 'none'}."]
    if warm := pipeline.get("warm_up"):
        lines += ["", f"Before the ramp, untimed: {rate_text(warm['rate'])}/s for {warm['seconds']:.0f} s (JIT warm-up; its p99 {warm['p99_ms']} ms)."]
    inbox = results.get("inbox_reads") or {}
    lines += ["", "## Inbox reads", ""]
    if (na := _status(inbox)) is not None:
        lines.append(na)
    else:
        lines += [f"{inbox['seller_conversations']:,} conversations of one seller among {inbox['rows']:,} rows; served by {inbox['served_by']}; "
                  f"seed {'reused' if inbox['seed']['reused'] else 'written'} ({inbox['seed']['seconds']} s).", "",
                  "| query | p50 ms | p99 ms | max ms | requests | items |", "|---|---|---|---|---|---|"]
        for name, v in inbox["reads"].items():
            if "p50_ms" in v:
                lines.append(f"| {name} | {v['p50_ms']} | {v['p99_ms']} | {v.get('max_ms', '')} | {v['requests']} | {v['items']} |")
            else:
                lines.append(f"| {name} | {v.get('error') or v.get('skipped')} | | | | |")
    bulk = pipeline.get("bulk") if pipeline else None
    lines += ["", "## Bulk", "", _status(bulk) or (f"{bulk['creators']} creators: BulkSendCompleted after {bulk['seconds']} s "
                                                    f"(delivered {bulk['delivered']}, rejected {bulk['rejected']} {bulk.get('rejected_by_reason') or ''}).")]
    memory = pipeline.get("memory") or {}
    lines += ["", "## Memory (after the highest load)", "", "| service | peak RSS MiB | peak since | sampled peak MiB | RSS now MiB |", "|---|---|---|---|---|"]
    for name, v in memory.items():
        if "peak_rss_mib" in v:
            lines.append(f"| {name} | {v['peak_rss_mib']} | {v['peak_is_since']} | {v['sampled_peak_rss_mib']} | {v['rss_now_mib']} |")
        else:
            lines.append(f"| {name} | n/a: {v['reason']} | | | |")
    return "\n".join(lines) + "\n"


def _triple(step: dict[str, Any] | None) -> str:
    if not step or not step.get("latency"):
        return "n/a"
    lat = step["latency"]
    return f"{lat['p50']} / {lat['p95']} / {lat['p99']}" + (" (diverged)" if step.get("diverged") else "")


def plot(results: dict[str, Any], path: Path) -> str | None:
    """Latency percentiles (log) against offered load (log), relay dashed,
    pipeline solid; diverged steps marked x. Returns why not, if not drawn."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (make bench installs it)"
    fig, (lat_ax, out_ax) = plt.subplots(1, 2, figsize=(13, 5))
    colors = {"p50": "tab:blue", "p95": "tab:orange", "p99": "tab:red"}
    for name, style in (("baseline", "--"), ("pipeline", "-")):
        section = results.get(name) or {}
        steps = [s for s in section.get("steps", []) if s.get("latency")]
        if not steps:
            continue
        label = "raw relay" if name == "baseline" else "pipeline"
        rates = [s["offered_rate"] for s in steps]
        for q, color in colors.items():
            lat_ax.plot(rates, [s["latency"][q] for s in steps], style, color=color, marker="o", ms=3, label=f"{label} {q}")
        diverged = [s for s in steps if s.get("diverged")]
        lat_ax.plot([s["offered_rate"] for s in diverged], [s["latency"]["p99"] for s in diverged], "kx", ms=9)
        out_ax.plot(rates, [s["delivered_rate"] for s in steps], style, marker="o", ms=3, label=label)
    lat_ax.set(xscale="log", yscale="log", xlabel="offered load (messages/s)", ylabel="latency (ms)",
               title="publication -> outcome (x = diverged)")
    lat_ax.grid(True, which="both", alpha=0.3)
    lat_ax.legend(fontsize=7)
    top = max([s["offered_rate"] for n in ("baseline", "pipeline") for s in (results.get(n) or {}).get("steps", [])] or [1])
    out_ax.plot([1, top], [1, top], ":", color="grey", label="out = offered")
    out_ax.set(xscale="log", yscale="log", xlabel="offered load (messages/s)", ylabel="outcomes/s", title="throughput")
    out_ax.grid(True, which="both", alpha=0.3)
    out_ax.legend(fontsize=7)
    fig.suptitle(f"Seller-Creator IM bench {results['meta']['stamp']} ({results['meta']['cpus']} shared cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def write(results: dict[str, Any], directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = results["meta"]["stamp"]
    paths = {kind: directory / f"{stamp}.{kind}" for kind in ("json", "md", "png")}
    why_not = plot(results, paths["png"])
    if why_not:
        results["meta"]["plot"] = f"not drawn: {why_not}"
        del paths["png"]
    paths["json"].write_text(json.dumps(results, indent=2, default=str) + "\n")
    paths["md"].write_text(markdown(results))
    return paths
