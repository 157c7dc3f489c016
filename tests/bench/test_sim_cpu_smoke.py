"""Smoke: the sim-server CPU bench's continuous load runs end to end at a minimal size.

No timing assertions: traffic flowed both ways, the result has its fields, and they agree
(the audio delivered cannot outrun the sim's pace; CPU per session-second is the same CPU).
"""

from __future__ import annotations

import math

import pytest

from bench import sim_cpu

pytestmark = pytest.mark.timeout(120)


async def test_continuous_load_streams_audio_and_measures() -> None:
    pace = 4.0
    result = await sim_cpu.measure_continuous(2, 1.0, pace, False, 40, warmup=1.0, stagger=0.2)
    assert result["connected"] == 2 and result["failures"] == []
    assert result["deltas_per_session_s"] > 0
    # Audio seconds per session-second: some (the sessions speak), never more than the pace.
    assert 0 < result["audio_s_per_session_s"] <= pace * 1.1
    cpu_s, seconds = result["server_cpu_s"], result["seconds"]
    assert cpu_s > 0
    assert math.isclose(result["server_cores"], cpu_s / seconds, rel_tol=0.02, abs_tol=2e-3)
    per_session = cpu_s * 1000 / (2 * seconds)
    assert math.isclose(result["cpu_ms_per_session_s"], per_session, rel_tol=0.02, abs_tol=2e-3)
    assert 10 < result["server_rss_mb"] < 4000  # MB of a Python server, not bytes
