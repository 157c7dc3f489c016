"""Owned tasks and clock-bounded waits (the runtime's "nothing hangs, nothing leaks")."""

from __future__ import annotations

import asyncio

import pytest

from vocalis.runtime.metrics import InputTimeline, first_audible_offset
from vocalis.runtime.tasks import TaskOwner, wait_for
from vocalis.utils.clock import ManualClock, MonotonicClock, settle


async def test_wait_for_times_out_on_the_given_clock_only() -> None:
    clock = ManualClock()
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    waiter = asyncio.create_task(wait_for(future, clock, 2.0))
    await settle()  # the wait starts (and its deadline is set) at t=0
    await clock.advance(1.9)
    assert not waiter.done()
    await clock.advance(0.2)
    assert await waiter is False
    assert not future.cancelled()  # a future passed in is left alone


async def _forever(cancelled: asyncio.Event) -> None:
    """A coroutine that never finishes and tells when it is cancelled."""
    try:
        await asyncio.Event().wait()
    finally:
        cancelled.set()


async def test_wait_for_cancels_a_coroutine_on_timeout_and_raises_its_errors() -> None:
    clock = ManualClock()
    cancelled = asyncio.Event()

    waiter = asyncio.create_task(wait_for(_forever(cancelled), clock, 1.0))
    await settle()
    await clock.advance(1.0)
    assert await waiter is False and cancelled.is_set()

    async def boom() -> None:
        raise ValueError("rejected")

    with pytest.raises(ValueError, match="rejected"):
        await wait_for(boom(), clock, 1.0)


async def test_wait_for_on_the_real_clock_keeps_the_same_promises() -> None:
    """The real clock's path (the loop's own timer): done, timed out, failed, cancelled."""
    clock = MonotonicClock()
    loop = asyncio.get_running_loop()
    future: asyncio.Future[int] = loop.create_future()
    waiter = asyncio.create_task(wait_for(future, clock, 60.0))
    await settle()
    future.set_result(1)
    assert await waiter is True

    pending: asyncio.Future[int] = loop.create_future()
    assert await wait_for(pending, clock, 0.001) is False
    assert not pending.done()  # a future passed in is left alone

    cancelled = asyncio.Event()

    assert await wait_for(_forever(cancelled), clock, 0.001) is False
    assert cancelled.is_set()  # an owned coroutine is cancelled and awaited

    async def boom() -> None:
        await asyncio.sleep(0)
        raise ValueError("rejected")

    with pytest.raises(ValueError, match="rejected"):
        await wait_for(boom(), clock, 60.0)

    # Cancelling the wait cancels an owned coroutine, never a future passed in.
    left: asyncio.Future[int] = loop.create_future()
    cancelled.clear()
    waits = [asyncio.create_task(wait_for(left, clock, 60.0))]
    waits.append(asyncio.create_task(wait_for(_forever(cancelled), clock, 60.0)))
    await settle()
    for wait in waits:
        wait.cancel()
    results = await asyncio.gather(*waits, return_exceptions=True)
    assert all(isinstance(r, asyncio.CancelledError) for r in results)
    assert not left.done() and cancelled.is_set()


async def test_task_owner_reports_failures_and_cancels_everything_on_close() -> None:
    failures: list[str] = []
    owner = TaskOwner("t", on_error=lambda name, exc: failures.append(f"{name}:{exc}"))

    async def fail() -> None:
        raise RuntimeError("bad")

    owner.spawn(fail(), "failing")
    blocked = owner.spawn(asyncio.Event().wait(), "blocked")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert failures == ["t:failing:bad"]
    await owner.aclose()
    assert blocked.cancelled() and len(owner) == 0
    with pytest.raises(RuntimeError):
        owner.spawn(asyncio.sleep(0), "late")


def test_input_timeline_maps_stream_positions_to_capture_time() -> None:
    timeline = InputTimeline()
    for k in range(10):  # 20 ms frames delivered at the end of each frame
        timeline.append(20.0, 0.02 * (k + 1))
    assert timeline.clock_time_of(50.0) == pytest.approx(0.05)
    assert timeline.clock_time_of(200.0) == pytest.approx(0.2)
    assert timeline.clock_time_of(260.0) == pytest.approx(0.26)  # beyond: extrapolated
    timeline.reset()
    assert timeline.clock_time_of(10.0) is None


def test_first_audible_offset() -> None:
    import numpy as np

    samples = np.zeros(100, dtype=np.int16)
    assert first_audible_offset(samples) is None
    samples[42] = -32768
    assert first_audible_offset(samples) == 42
