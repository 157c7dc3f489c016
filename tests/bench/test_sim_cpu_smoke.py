"""Smoke: the sim-server CPU bench's continuous load runs end to end at a minimal size.

No timing assertions: only that traffic flowed both ways and the result has its fields.
"""

from __future__ import annotations

import pytest

from bench import sim_cpu

pytestmark = pytest.mark.timeout(120)


async def test_continuous_load_streams_audio_and_measures() -> None:
    result = await sim_cpu.measure_continuous(2, 1.0, 4.0, False, 40, warmup=1.0, stagger=0.2)
    assert result["deltas_per_session_s"] > 0
    assert result["server_cpu_s"] >= 0
    for key in ("cpu_ms_per_session_s", "server_cores", "server_rss_mb", "audio_s_per_session_s"):
        assert key in result
