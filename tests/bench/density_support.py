"""What every density point's figures must satisfy, shared by the benchmark smoke tests."""

from __future__ import annotations

import math
from typing import Any

from bench import density

TINY = density.Timing(warmup_s=0.5, window_s=1.0, quiet_wait_s=0.0)
# One agent process on this machine: a core-second per second at most, with room for its
# helper threads; a figure in seconds read as ms, or a per-session share not divided by the
# sessions, lands far outside.
MAX_AGENT_CORES = 2.0


def check_point(point: dict[str, Any], sessions: int) -> None:
    """A density point's figures agree with each other and with its load."""
    assert point["connected"] == sessions and point["failed_sessions"] == 0, point["failures"]
    assert 0 <= point["lag_p50_ms"] <= point["lag_p99_ms"] <= point["lag_max_ms"]
    for count in ("underruns", "device_gaps", "responses", "interruptions"):
        assert isinstance(point[count], int) and point[count] >= 0, count
    # cpu_ms_per_session_s is the agent's CPU spread over its sessions: the same CPU.
    cores = point["agent_cpu_cores"]
    assert 0 < cores <= MAX_AGENT_CORES * point["workers"]
    assert math.isclose(point["cpu_ms_per_session_s"] * sessions / 1000, cores, abs_tol=2e-3)
    # A Python process with numpy and the runtime: tens of MB, never bytes or terabytes.
    assert 10 < point["rss_total_mb"] < 4000
    assert point["rss_per_session_mb"] <= max(point["rss_added_mb"], 0.0) + 1e-9
    # The strict pass (no loop stall of 20 ms) never passes where the pass fails
    # (test_density_pass.py checks how it is decided).
    assert point["ok"] or not point["ok_max"]
    # The machine's speed at the window's edges: a loop of fixed work, in ms, not s or µs.
    assert len(point["cpu_probe_ms"]) == 2 and all(0.5 < x < 1000 for x in point["cpu_probe_ms"])
