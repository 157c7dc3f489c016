"""A long call keeps few bytes per item of its conversation, and nothing else grows (#14).

A 10-minute call must keep its heard history (and the provider mirror and turn metrics that
go with it): that grows with the call by design. Everything else must not grow at all. This
drives one real call (the OpenAI client over a socket to a sim-server in its own process, so
only the client's memory is traced) through turn cycles — plain answer, preamble + tool call
+ follow-up, barge-in — and measures with tracemalloc what the process keeps more after
another six cycles, per history item added meanwhile. Before #14's fixes a call kept about
1,830 bytes per item (decoded copies of every id and transcript, the whole event stream, the
turn-metrics events whole, tuple order keys, empty dicts); now about 1,130. The bound is the
documented figure of docs/reliability.md with a margin for measurement noise (±40 bytes).
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

import pytest
from bench.soak import AGENT, CYCLE, Call, sim_process

pytestmark = pytest.mark.timeout(300)

# docs/reliability.md, "What a call keeps per item".
MAX_BYTES_PER_ITEM = 1_300
WARM_CYCLES = 6  # past the session event log's byte bound and every first-use cache
MEASURED_CYCLES = 6


# Allocations made by C code straight from a loop callback: the socket library's read buffer
# (picows doubles it after a loop stall and keeps it). On a loaded machine a stall can land in
# the measured cycles and add ~0.5 MB once; that is the transport's buffer, bounded by the
# largest frame, not what the call keeps per item. Allocations of Python code (vocalis's own,
# and the library's callbacks into it) carry their own frames and are all still counted.
_NOT_THE_CALL = (tracemalloc.Filter(False, asyncio.events.__file__),)


def _traced_bytes() -> int:
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces(_NOT_THE_CALL)
    return sum(stat.size for stat in snapshot.statistics("filename"))


async def test_a_long_call_keeps_few_bytes_per_history_item() -> None:
    async with sim_process(WARM_CYCLES + MEASURED_CYCLES + 2) as url:
        call = Call(url, 0)
        await call.session.start(AGENT)
        tracemalloc.start()
        try:
            for k in range(len(CYCLE) * WARM_CYCLES):
                await call.turn(CYCLE[k % len(CYCLE)])
            before, items_before = _traced_bytes(), len(call.session.history)
            for k in range(len(CYCLE) * MEASURED_CYCLES):
                await call.turn(CYCLE[k % len(CYCLE)])
            after, items_after = _traced_bytes(), len(call.session.history)
        finally:
            tracemalloc.stop()
        call.check_history()
        await call.aclose()
    assert call.stats.complete, call.stats.problems
    added = items_after - items_before
    assert added >= 10 * MEASURED_CYCLES  # ~11 items per cycle
    per_item = (after - before) / added
    assert per_item < MAX_BYTES_PER_ITEM, f"{per_item:.0f} bytes kept per history item"
