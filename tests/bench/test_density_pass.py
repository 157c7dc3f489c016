"""A density point's pass criteria, from a worker's result (no processes, no timing).

`ok` is the benchmark's pass (lag p99 < 20 ms, every session up, no gap or underrun);
`ok_max` adds issue #17's stricter line: no single loop stall of 20 ms in the window. One
stall among a thousand lag samples leaves p99 alone and must fail only the stricter one.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from density_support import TINY

from bench import density

TIMING = replace(TINY, load="continuous")


def worker_result(lag_ms: list[float], *, underruns: int = 0) -> dict[str, Any]:
    """What one worker reports (the fields `_aggregate` reads)."""
    return {
        "sessions": 2,
        "lag_ms": lag_ms,
        "cpu_s": 0.1,
        "window_s": 1.0,
        "underruns": underruns,
        "device_gaps": 0,
        "failures": [],
        "rss_start": 50 * 2**20,
        "rss_peak": 51 * 2**20,
        "responses": 2,
        "interruptions": 0,
        "connect_s": 0.1,
    }


def point_of(result: dict[str, Any]) -> dict[str, Any]:
    return density._aggregate("vocalis", 2, 1, TIMING, [result], 0.05, 1.0, 0)


def test_a_single_stall_fails_only_the_strict_pass() -> None:
    steady = [1.0] * 1000
    calm = point_of(worker_result(steady))
    assert (calm["ok"], calm["ok_max"]) == (True, True)
    stalled = point_of(worker_result([*steady, density.LAG_MAX_LIMIT_MS + 5.0]))
    assert stalled["lag_p99_ms"] < density.LAG_P99_LIMIT_MS
    assert (stalled["ok"], stalled["ok_max"]) == (True, False)


def test_the_strict_pass_needs_the_pass() -> None:
    point = point_of(worker_result([1.0] * 1000, underruns=1))
    assert (point["ok"], point["ok_max"]) == (False, False)
