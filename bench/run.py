"""``python -m bench.run``: every benchmark, results to ``bench/results/``.

    uv run python -m bench.run            # full run (~10 min on 2 cores)
    uv run python -m bench.run --quick    # smoke-sized run (< 1 min)
    uv run python -m bench.run --only density,truncation

Writes to ``bench/results/`` (``bench/results/quick/`` for ``--quick``): ``density.json``,
``density_continuous.json`` (bench/continuous.py: issue #17's continuous-speech load, runs
appended), ``latency.json``, ``truncation.json``, ``growth.json``, ``profile.json``,
``telemetry.json`` (bench/telemetry.py: per-frame cost of tracing off and on) and ``summary.md``
(the tables of docs/performance.md). Nothing here passes or fails: the numbers are reported
against the targets, and the run exits 0 unless a benchmark itself crashed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bench import bargein, continuous, density, growth, telemetry
from bench.common import REPO, RESULTS, log, machine, ratio, write_json
from bench.report import write_summary

ALL = ("density", "continuous", "latency", "truncation", "growth", "profile", "telemetry")


@dataclass(frozen=True)
class Plan:
    timing: density.Timing
    vocalis_counts: list[int]
    two_worker_counts: list[int]
    bare_counts: list[int]
    frames40_counts: list[int]
    frames40_two_worker_counts: list[int]
    loaded_latency_sessions: int
    profile_sessions: int
    bargein_sessions: int
    bargein_trials: int
    growth_minutes: list[float]
    # The continuous-speech load (issue #17), one process, with the bare baseline per N.
    continuous_counts: list[int]


FULL = Plan(
    timing=density.Timing(warmup_s=3.0, window_s=10.0),
    vocalis_counts=[1, 10, 25, 50, 100, 150, 200, 300],
    two_worker_counts=[100, 150, 200, 300],
    bare_counts=[1, 100, 150, 200, 300],
    frames40_counts=[100, 200, 300],
    frames40_two_worker_counts=[200, 300],
    loaded_latency_sessions=100,
    profile_sessions=50,
    bargein_sessions=25,
    bargein_trials=8,
    growth_minutes=[1.0, 10.0, 60.0],
    continuous_counts=[50, 100, 150],
)
QUICK = Plan(
    timing=density.Timing(warmup_s=1.0, window_s=2.5, quiet_wait_s=0.0),
    vocalis_counts=[10],
    two_worker_counts=[10],
    bare_counts=[10],
    frames40_counts=[],
    frames40_two_worker_counts=[],
    loaded_latency_sessions=10,
    profile_sessions=10,
    bargein_sessions=4,
    bargein_trials=1,
    growth_minutes=[1.0, 2.0],
    continuous_counts=[5],
)


def _meta(plan: Plan, quick: bool) -> dict[str, Any]:
    return {
        "quick": quick,
        "machine": machine(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "timing": plan.timing.__dict__,
    }


async def _density(plan: Plan, scratch: Path, meta: dict[str, Any]) -> dict[str, Any]:
    t = plan.timing
    one = await density.sweep("vocalis", plan.vocalis_counts, 1, t, scratch)
    best_one = density.largest_ok(one)
    two = await density.sweep("vocalis", plan.two_worker_counts, 2, t, scratch)
    best_two = density.largest_ok(two)
    bare = await density.sweep("bare", plan.bare_counts, 1, t, scratch)
    # The same product with the transport delivering 40 ms frames (two per message).
    t40 = replace(t, frame_ms=40)
    frames40 = await density.sweep("vocalis", plan.frames40_counts, 1, t40, scratch)
    frames40_two = await density.sweep("vocalis", plan.frames40_two_worker_counts, 2, t40, scratch)
    bare_by_n = {p["sessions"]: p for p in bare}
    for p in one:
        b = bare_by_n.get(p["sessions"])
        if b is not None:
            p["bare_cpu_ms_per_session_s"] = b["cpu_ms_per_session_s"]
            p["ratio_cpu_vs_bare"] = ratio(p["cpu_ms_per_session_s"], b["cpu_ms_per_session_s"])
    return {
        **meta,
        "criterion": f"lag p99 < {density.LAG_P99_LIMIT_MS} ms, 0 underruns, all sessions up",
        "pace": t.pace,
        "period_s": t.period_s,
        "one_worker": one,
        "two_workers": two,
        "one_worker_40ms_frames": frames40,
        "two_workers_40ms_frames": frames40_two,
        "baseline_bare": bare,
        "largest_ok_one_worker": best_one,
        "largest_ok_two_workers": best_two,
        "largest_ok_bare": density.largest_ok(bare),
        "largest_ok_40ms_frames": density.largest_ok(frames40),
        "largest_ok_40ms_frames_two_workers": density.largest_ok(frames40_two),
    }


async def _loaded_latency(plan: Plan, scratch: Path) -> dict[str, Any]:
    n = plan.loaded_latency_sessions
    point = await density.measured_point("vocalis", n, 1, plan.timing, scratch, instrument=True)
    bare = await density.measured_point("bare", n, 1, plan.timing, scratch, instrument=True)
    return {
        "sessions": n,
        "condition": f"{n} concurrent real-time sessions, 1 worker (density load)",
        "lag_p99_ms": point["lag_p99_ms"],
        "other_cpu_cores": point["other_cpu_cores"],
        "underruns": point["underruns"],
        "underruns_in_first_100ms": point.get("underruns_in_first_100ms"),
        "underrun_at_ms": point.get("underrun_at_ms"),
        "sim_rtt_ms": point.get("sim_rtt_ms"),
        "first_delta_to_sink_push_ms": point.get("first_delta_to_sink_push_ms"),
        "baseline_bare_first_delta_to_queue_ms": bare.get("first_delta_to_sink_push_ms"),
        "baseline_bare_lag_p99_ms": bare["lag_p99_ms"],
    }


async def _profile(plan: Plan, scratch: Path) -> dict[str, Any]:
    out = scratch / "profile_density.json"
    point = await density.run_point(
        "vocalis", plan.profile_sessions, 1, plan.timing, scratch, profile=out
    )
    data = json.loads(out.read_text(encoding="utf-8"))
    return {
        "sessions": plan.profile_sessions,
        "tool": "pyinstrument, 1 ms sampling of one density worker's measurement window",
        "html": str(out.with_suffix(".html").relative_to(REPO)),
        "point": {k: point[k] for k in ("lag_p99_ms", "cpu_ms_per_session_s", "underruns")},
        **data,
    }


async def main(args: argparse.Namespace) -> int:
    plan = QUICK if args.quick else FULL
    if args.sessions:
        counts = [int(x) for x in args.sessions.split(",")]
        plan = replace(plan, vocalis_counts=counts)
    only = set(args.only.split(",")) if args.only else set(ALL)
    # A quick run never overwrites the committed full results.
    results_dir = (
        Path(args.results) if args.results else RESULTS / "quick" if args.quick else RESULTS
    )
    scratch = REPO / "out" / "bench"
    scratch.mkdir(parents=True, exist_ok=True)
    meta = _meta(plan, args.quick)
    started = time.perf_counter()

    if "density" in only:
        log("density sweep")
        write_json("density", await _density(plan, scratch, meta), results_dir)
    if "continuous" in only:
        log("density, continuous speech")
        timing = replace(plan.timing, load="continuous")
        variants = ["vocalis:tuned", "bare"]
        data = await continuous.run(plan.continuous_counts, 1, variants, timing, scratch)
        continuous.write_runs({**meta, **data}, results_dir)
    if "truncation" in only or "latency" in only:
        log(f"barge-ins: {plan.bargein_sessions} sessions x {plan.bargein_trials}")
        truncation, latency = await bargein.run(
            scratch,
            sessions=plan.bargein_sessions,
            trials=plan.bargein_trials,
            quiet_wait=plan.timing.quiet_wait_s,
        )
        if "truncation" in only:
            write_json("truncation", {**meta, **truncation}, results_dir)
        if "latency" in only:
            log("added latency under density load")
            latency["under_load"] = await _loaded_latency(plan, scratch)
            write_json("latency", {**meta, **latency}, results_dir)
    if "growth" in only:
        log(f"cost growth: {plan.growth_minutes} min")
        write_json(
            "growth", {**meta, **await growth.run(scratch, plan.growth_minutes)}, results_dir
        )
    if "profile" in only:
        log("profile")
        write_json("profile", {**meta, **await _profile(plan, scratch)}, results_dir)
    if "telemetry" in only:
        log("telemetry cost (tracing off / on vs baseline)")
        size = ["--rounds", "1", "--calls", "2"] if args.quick else []
        telemetry.main([*size, "--out", str(results_dir)])
    summary = write_summary(results_dir)
    log(f"done in {time.perf_counter() - started:.0f} s; summary: {summary}")
    return 0


def cli() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke-sized run (< 1 min)")
    parser.add_argument("--only", help=f"comma list of {','.join(ALL)}")
    parser.add_argument("--sessions", help="density session counts for one worker, e.g. 1,50,100")
    parser.add_argument("--results", help="results directory (default bench/results)")
    return asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(cli())
