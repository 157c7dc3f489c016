"""Settling the responses a closing session cuts short.

Closing cancels every run's task, which would skip the ledger: the part of an answer the
caller heard — and a tool call with its result — would be missing from the history the app
saves at hang-up. So the session settles them here, on what is known: the results its
cleared sink reports for each segment.

A sink may take a while to report after a clear (a browser page answers within its own
timeout), so the wait is bounded; it is one wait for every segment of every run, not one per
segment: one by one, a call closing with 32 open responses took up to a minute. The runs
then settle in their start order (each has its place in the history by its `order_key`, and
tool outputs recorded on close follow in that order).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from vocalis.runtime.playout import PulledMessage
from vocalis.runtime.response import ResponseRun
from vocalis.runtime.tasks import wait_for
from vocalis.transports.base import PlayoutResult
from vocalis.utils.clock import Clock

__all__ = ["CLOSE_RESULT_WAIT_S", "settle_on_close"]

# How long a cleared sink may take to report what was played, in all (session clock).
CLOSE_RESULT_WAIT_S = 2.0


async def settle_on_close(runs: Sequence[ResponseRun], clock: Clock) -> None:
    """Settle `runs` (unsettled when the session closed; in start order)."""
    for run in runs:
        run.stop_on_close()
    waiting = [
        pulled
        for run in runs
        if run.ledger is None
        for pulled in run.playout.pulled
        if pulled.result is None and pulled.segment is not None
    ]
    await _collect_cleared_results(waiting, clock)
    for run in runs:
        run.settle_closed()


async def _collect_cleared_results(waiting: list[PulledMessage], clock: Clock) -> None:
    """Each segment's result, if its sink reports one within `CLOSE_RESULT_WAIT_S` (all
    waited for together); one it does not report counts as never heard."""
    if not waiting:
        return
    results: list[asyncio.Future[PlayoutResult]] = []
    for pulled in waiting:
        assert pulled.segment is not None
        results.append(asyncio.ensure_future(pulled.segment.wait_for_playout()))
    every = asyncio.gather(*results, return_exceptions=True)
    try:
        await wait_for(every, clock, CLOSE_RESULT_WAIT_S)
    finally:
        every.cancel()  # the ones not reported in time (a no-op once all were)
        await asyncio.gather(every, return_exceptions=True)
    for pulled, result in zip(waiting, results, strict=True):
        if result.done() and not result.cancelled() and result.exception() is None:
            pulled.result = result.result()
            pulled.sync.finish(pulled.result)
