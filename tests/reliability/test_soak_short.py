"""The soak in miniature (the full one is `make soak`): 5 concurrent calls of a few turn
cycles each (plain / tool call / barge-in), 5 slots of back-to-back calls at steady load, then
20 calls one after another, in one process.

Asserts what must hold at any size — no failed call, every history complete, no task or file
descriptor outliving the calls. RSS and timing are measured only by bench/soak.py.
"""

from __future__ import annotations

import pytest
from bench.soak import CYCLE, scenario, soak

from vocalis.sim.server import SimServer

pytestmark = pytest.mark.timeout(300)


async def test_short_soak_no_leaks_and_complete_histories() -> None:
    async with SimServer(scenario=scenario(40), pace=0.0) as sim:
        result = await soak(
            sim.url,
            sessions=5,
            call_seconds=25.0,
            sequential=20,
            warm_after=5,
            rolling_window_s=15.0,
        )

    concurrent = result["concurrent"]
    assert concurrent["failed_sessions"] == []
    assert concurrent["incomplete_histories"] == []
    assert concurrent["complete_histories"] == 5
    assert all(concurrent["turns"][kind] >= 5 for kind in CYCLE)  # each session: all kinds
    assert concurrent["leaked_tasks"] == [] and concurrent["leaked_fds"] == 0

    rolling = result["rolling"]
    assert rolling["failed_calls"] == []
    assert rolling["incomplete_histories"] == 0
    assert rolling["calls"] >= 10  # every slot ended a call and took the next
    assert rolling["leaked_tasks"] == [] and rolling["leaked_fds"] == 0

    sequential = result["sequential"]
    assert sequential["failed_sessions"] == []
    assert sequential["incomplete_histories"] == 0
    assert sequential["leaked_tasks"] == [] and sequential["leaked_fds"] == 0
