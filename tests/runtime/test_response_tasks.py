"""What a response costs the event loop, and the stall watchdog that watches every response.

At a lockstep response boundary (#17) every session's per-response tasks land on the loop at
once, so a response starts only the tasks its work needs: a response without tool calls has
no tool task, no response has a watchdog task of its own (one per session watches all), and
its messages are pulled, played and followed by the response's one task and callbacks.
Observed through asyncio's own task list: the runtime names every task it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from fake_provider import FakeMessage, FakeResponse, FakeSession
from hypothesis import given, settings
from hypothesis import strategies as st

from task_support import created_tasks
from vocalis.runtime.agent import Agent
from vocalis.runtime.events import ErrorEvent, ToolCallFinished
from vocalis.runtime.options import AgentSessionOptions
from vocalis.runtime.session import AgentSession
from vocalis.runtime.tools import function_tool
from vocalis.runtime.watchdog import next_check
from vocalis.transports.memory import MemoryTransport
from vocalis.utils.clock import ManualClock, wait_idle


@function_tool
def lookup(order_id: str) -> str:
    """Find an order."""
    return "shipped"


@contextlib.asynccontextmanager
async def session_on(
    provider: FakeSession, options: AgentSessionOptions | None = None
) -> AsyncIterator[tuple[AgentSession, ManualClock]]:
    clock = ManualClock()
    transport = MemoryTransport(clock)
    session = AgentSession(provider, transport, clock=clock, options=options)
    await session.start(Agent("Orders.", tools=[lookup]))
    try:
        yield session, clock
    finally:
        await session.aclose()
        await transport.aclose()


def kinds_for(tasks: list[asyncio.Task[Any]], response_id: str) -> list[str]:
    """Kinds of the tasks named for `response_id` ("session:<kind>:<response id>")."""
    names = [task.get_name() for task in tasks]
    return sorted(name.split(":")[1] for name in names if name.endswith(f":{response_id}"))


async def play_until(clock: ManualClock, done: Callable[[], bool], limit_s: float = 30.0) -> None:
    steps = 0
    while not done():
        await clock.advance(0.02)
        steps += 1
        assert steps * 0.02 <= limit_s, "condition not reached"


async def test_a_response_without_tool_calls_runs_no_tool_or_watchdog_task() -> None:
    provider = FakeSession()
    provider.script.append(FakeResponse([FakeMessage("Your order shipped.", 600)]))
    async with session_on(provider) as (session, clock):
        with created_tasks() as tasks:
            handle = session.generate_reply()
            await play_until(clock, lambda: handle.done)
        assert kinds_for(tasks, handle.response_id or "") == ["response"]


async def test_a_response_with_a_call_answers_it_once_and_follows_up() -> None:
    provider = FakeSession()
    provider.script.append(
        FakeResponse([FakeMessage("Checking.", 300)], calls=[("c1", "lookup", '{"order_id": "4"}')])
    )
    provider.script.append(FakeResponse([FakeMessage("It shipped.", 300)]))
    async with session_on(provider) as (session, clock):
        finished: list[ToolCallFinished] = []
        session.on(ToolCallFinished, finished.append)
        with created_tasks() as tasks:
            handle = session.generate_reply()
            await play_until(clock, lambda: provider.kinds().count("response.create") == 2)
            await play_until(clock, lambda: session.snapshot().idle)
        # The answer step is a task only because a call arrived.
        assert "outputs" in kinds_for(tasks, handle.response_id or "")
        assert [f.call_id for f in finished] == ["c1"]
        assert provider.kinds().count("tool_output") == 1
        assert ("tool_output", ("c1", "shipped")) in provider.ops


async def test_a_stall_after_a_finished_response_is_still_caught() -> None:
    """The watchdog slept until the first response's deadline when the second one started:
    it must still cancel the second one once it went quiet for `stall_timeout_s`."""
    options = AgentSessionOptions(stall_timeout_s=2.0, cancel_timeout_s=1.0)
    provider = FakeSession()
    provider.script.append(FakeResponse([FakeMessage("Hello.", 300)]))
    provider.script.append(FakeResponse([FakeMessage("", 0)], finish=False, ack_cancel=False))
    async with session_on(provider, options) as (session, clock):
        first = session.generate_reply()
        await play_until(clock, lambda: first.done)
        await clock.advance(1.0)  # the watchdog's next wake-up is still ahead
        second = session.generate_reply()
        await wait_idle()
        (run,) = session.responses
        stalled_at = clock.now()
        await play_until(clock, lambda: second.done, limit_s=10)
        reports = [(e.code, e.response_id) for e in session.event_log if isinstance(e, ErrorEvent)]
        assert reports == [
            ("response_stalled", run.response_id),
            ("response_not_acknowledged", run.response_id),
        ]
        assert ("response.cancel", run.response_id) in provider.ops
        assert clock.now() - stalled_at >= 2.0


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.text(max_size=3), st.floats(0, 100, allow_nan=False), max_size=6),
    st.floats(0, 200, allow_nan=False),
    st.floats(0.01, 50, allow_nan=False),
)
def test_next_check_splits_stalled_from_the_next_deadline(
    progress: dict[str, float], now: float, limit: float
) -> None:
    stalled, deadline = next_check(progress, now, limit)
    assert stalled == [rid for rid, last in progress.items() if last + limit <= now]
    waiting = [last + limit for rid, last in progress.items() if rid not in stalled]
    assert deadline == (min(waiting) if waiting else None)
    assert deadline is None or deadline > now
