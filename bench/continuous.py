"""``python -m bench.continuous``: the continuous-speech density load of issue #17, with the
bare-client baseline measured in the same run.

    uv run python -m bench.continuous --sessions 50,100 --workers 1
    uv run python -m bench.continuous --sessions 100 --variants vocalis:default:20,vocalis,bare

Per N, every variant runs as its own point (fresh sim process, `bench.density.run_point`):
``vocalis:<gc>`` is the product with the worker's collector left at CPython's defaults
(``default``) or settled by `vocalis.utils.gc_tuning.settle_heap` (``tuned``), optionally with
caller audio per provider append in ms (``vocalis:default:20`` = one append per 20 ms frame,
the behaviour before batching) and on ``uvloop`` (``vocalis:tuned::uvloop``); ``bare`` is the
wire-only floor (`bench.agents.BareClient`) on websockets, ``bare-picows`` the same on picows
(the library vocalis uses when the `fast` extra is installed; ``bare-picows:::uvloop``).
A fifth field picks the simulated callers: ``feeder`` (default: one paced timer per worker
process hands every session its frame, the bare client's player on the shared ticker) or
``task`` (the harness before: a caller task per session, and the bare client's own player
task and one append per frame) — ``vocalis:tuned::uvloop:task`` next to
``vocalis:tuned::uvloop`` shows what the harness itself cost.
Output: ``bench/results/density_continuous.json`` (one run appended per invocation:
before/after comparisons live in one file) with the CPU ratio of every vocalis point to the
bare point of the same N.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, cast

from bench import density
from bench.common import REPO, RESULTS, CallerMode, append_run, log, machine, ratio

GcMode = Literal["default", "tuned"]
LoopMode = Literal["asyncio", "uvloop"]


def _variant(text: str, timing: density.Timing) -> density.Timing:
    """``mode[:gc[:input_chunk_ms[:loop[:caller]]]]``, e.g. ``vocalis:tuned:20:uvloop`` or
    ``bare-picows:::uvloop:task`` (the old per-session caller tasks)."""
    _mode, gc_mode, chunk, loop, caller = [*text.split(":"), "", "", "", ""][:5]
    if caller not in ("", "feeder", "task"):
        raise ValueError(f"variant {text!r}: caller must be feeder or task, not {caller!r}")
    return replace(
        timing,
        gc=cast(GcMode, gc_mode or "default"),
        input_chunk_ms=int(chunk) if chunk else None,
        loop=cast(LoopMode, loop or "asyncio"),
        caller=cast(CallerMode, caller or "feeder"),
    )


async def run(
    counts: list[int],
    workers: int,
    variants: list[str],
    timing: density.Timing,
    scratch: Path = REPO / "out" / "bench",
    *,
    stalls: Path | None = None,
    instrument: bool = False,
) -> dict[str, Any]:
    scratch.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, before any I/O
    points: list[dict[str, Any]] = []
    for n in counts:
        by_variant: dict[str, dict[str, Any]] = {}
        for variant in variants:
            mode = variant.split(":")[0]
            watch = None
            if stalls is not None:
                stalls.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - a local mkdir
                watch = stalls / f"stalls_{variant.replace(':', '_')}_{n}.json"
            point = await density.run_point(
                mode,
                n,
                workers,
                _variant(variant, timing),
                scratch,
                stalls=watch,
                instrument=instrument,
            )
            point["variant"] = variant
            if watch is not None and watch.exists():
                point["stalls_file"] = str(watch)
            by_variant[variant] = point
            log(
                f"continuous {variant} x{workers} N={n}: lag p99/max {point['lag_p99_ms']}/"
                f"{point['lag_max_ms']} ms, gaps {point['device_gaps']}, underruns "
                f"{point['underruns']}, cpu {point['cpu_ms_per_session_s']} ms/session-s, "
                f"sim {point['sim_cpu_cores']} cores, gc2 max "
                f"{point['gc_max_pause_ms']['gen2']} ms, {'ok' if point['ok'] else 'FAIL'}"
                f"{' (lag max < 20 ms)' if point['ok_max'] else ''}"
            )
        bare = by_variant.get("bare")
        for point in by_variant.values():
            if bare is not None and point is not bare:
                point["ratio_cpu_vs_bare"] = ratio(
                    point["cpu_ms_per_session_s"], bare["cpu_ms_per_session_s"]
                )
        points.extend(by_variant.values())
    # Memory and CPU per *extra* session: slopes between the N of each variant.
    for variant in variants:
        density.marginals([p for p in points if p["variant"] == variant])
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine(),
        "load": "continuous",
        "workers": workers,
        "timing": timing.__dict__,
        "points": points,
    }


def write_runs(data: dict[str, Any], results: Path = RESULTS) -> Path:
    """Append one run to ``density_continuous.json`` (earlier runs are kept)."""
    return append_run("density_continuous", data, results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.continuous")
    parser.add_argument("--sessions", default="50,100", help="comma list of N")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--variants", default="vocalis:default,vocalis:tuned,bare")
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--window", type=float, default=12.0)
    parser.add_argument("--results", help="results directory (default bench/results)")
    parser.add_argument(
        "--spread",
        type=float,
        default=0.0,
        help="spread the sessions' first requests over this many seconds (0: all at once, "
        "responses in lockstep); keep --warmup above it",
    )
    parser.add_argument(
        "--line",
        choices=["silence", "noise"],
        default="silence",
        help="the caller's line while the agent speaks: digital silence, or noise at about "
        "-40 dBFS (no quiet batching of caller audio)",
    )
    parser.add_argument(
        "--stalls",
        help="directory: every worker of each point records its loop stalls there (worker i "
        "> 0 with _w<i>; bench.stalls: stacks sampled while the loop is > 20 ms late; "
        "diagnostic, adds a thread)",
    )
    parser.add_argument(
        "--provider",
        choices=["sim", "replay"],
        default="sim",
        help="sim: vocalis sim-server; replay: bench.replay_provider, the sim's recorded "
        "output at a fraction of its CPU (what the agents do when the provider is not the limit)",
    )
    parser.add_argument(
        "--instrument",
        action="store_true",
        help="vocalis points also time each message's first audio delta to the first frame "
        "handed to the sink (first_delta_to_sink_push_ms: the added latency of issue #17)",
    )
    args = parser.parse_args(argv)
    timing = density.Timing(
        warmup_s=args.warmup,
        window_s=args.window,
        load="continuous",
        spread_s=args.spread,
        line=args.line,
        provider=args.provider,
    )
    counts = [int(x) for x in args.sessions.split(",")]
    stalls = Path(args.stalls) if args.stalls else None
    data = asyncio.run(
        run(
            counts,
            args.workers,
            args.variants.split(","),
            timing,
            stalls=stalls,
            instrument=args.instrument,
        )
    )
    out = write_runs(data, Path(args.results) if args.results else RESULTS)
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
