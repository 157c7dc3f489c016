"""`ManualClock.advance` returns when every task is blocked, however long the chain of
reactions (like trio's `wait_all_tasks_blocked`): tests need no fixed number of loop turns."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from vocalis.utils.clock import (
    IdleTrackingExecutor,
    ManualClock,
    MonotonicClock,
    call_later,
    wait_idle,
)


async def test_advance_waits_for_a_long_chain_of_reactions() -> None:
    clock = ManualClock()
    reached: list[int] = []

    async def relay(n: int) -> None:
        await clock.sleep(1.0)
        for step in range(200):  # far more hops than any fixed settle count
            await asyncio.sleep(0)
            reached.append(step)
        reached.append(n)

    task = asyncio.create_task(relay(-1))
    await clock.advance(1.0)
    assert reached[-1] == -1 and len(reached) == 201
    await task


async def test_wake_ups_run_in_deadline_order_each_settled_before_the_next() -> None:
    clock = ManualClock()
    log: list[tuple[str, float]] = []

    async def sleeper(name: str, delay: float) -> None:
        await clock.sleep(delay)
        for _ in range(50):
            await asyncio.sleep(0)
        log.append((name, clock.now()))

    tasks = [asyncio.create_task(sleeper(n, d)) for n, d in (("b", 0.2), ("a", 0.1))]
    await clock.advance(0.5)
    assert log == [("a", 0.1), ("b", 0.2)]
    assert clock.now() == 0.5
    await asyncio.gather(*tasks)


async def test_thread_work_counts_as_busy() -> None:
    release = threading.Event()
    done: list[str] = []

    async def job() -> None:
        await asyncio.to_thread(release.wait, 5.0)
        done.append("thread")

    executor = IdleTrackingExecutor.install(asyncio.get_running_loop())
    executor.grace_s = 60.0  # a loaded machine must not turn the job into a "hung" one
    task = asyncio.create_task(job())
    await asyncio.sleep(0)
    asyncio.get_running_loop().call_later(0.05, release.set)
    await wait_idle()
    assert done == ["thread"]
    await task


async def test_a_hanging_thread_stops_counting_after_the_grace() -> None:
    executor = IdleTrackingExecutor.install(asyncio.get_running_loop())
    executor.grace_s = 0.05
    stop = threading.Event()
    hung = asyncio.ensure_future(asyncio.to_thread(stop.wait, 10.0))
    await wait_idle()  # returns although the job still runs
    assert not hung.done()
    stop.set()
    await hung


async def test_a_job_counts_done_only_after_its_result_was_handed_back() -> None:
    """The count-down reaches the loop after the awaiting side's hand-back, however long the
    worker thread takes between the two (here: a hand-back callback held up 0.2 s, as a
    thread preempted there would be). Otherwise `wait_idle` could see no job and no ready
    task while the task awaiting the result has not been woken yet."""
    executor = IdleTrackingExecutor.install(asyncio.get_running_loop())
    executor.grace_s = 60.0  # only the count-down ends the wait below
    handed_back = threading.Event()

    def slow_hand_back(_future: object) -> None:
        time.sleep(0.2)
        handed_back.set()

    go = threading.Event()
    future = executor.submit(lambda: go.wait(5.0) and 42)
    future.add_done_callback(slow_hand_back)  # asyncio's `wrap_future` registers here too
    go.set()
    while executor.fresh_jobs():
        await executor.wait_for_change()
    assert handed_back.is_set()
    assert future.result() == 42


async def test_call_later_on_a_manual_clock_fires_when_its_time_comes() -> None:
    clock = ManualClock()
    fired: list[float] = []
    call_later(clock, 2.0, lambda: fired.append(clock.now()))
    cancelled = call_later(clock, 1.0, lambda: fired.append(-1.0))
    cancelled.cancel()
    await clock.advance(1.5)
    assert fired == []
    await clock.advance(1.0)
    assert fired == [2.0]


async def test_call_later_on_the_real_clock_is_a_loop_timer_not_a_task() -> None:
    """A timer waiting for most of a call keeps no task alive (`call_later`'s why)."""
    fired = asyncio.Event()
    tasks = len(asyncio.all_tasks())
    timer = call_later(MonotonicClock(), 0.01, fired.set)
    never = call_later(MonotonicClock(), 0.0, lambda: pytest.fail("cancelled timer fired"))
    never.cancel()
    assert len(asyncio.all_tasks()) == tasks
    await asyncio.wait_for(fired.wait(), 10)
    timer.cancel()  # after it fired: no effect, no error
