"""Harness for the fault matrix: the real pieces, every invariant checked after each case.

Like the conformance harness, an `AgentSession` talks to the real `vocalis.sim` server (pace
0) through the real OpenAI client, and the caller side is a `MemoryTransport` whose playback
clock is a `ManualClock` — so "the caller heard 800 ms of the reply" is exact. What this harness
adds is the part every fault case must prove, whatever the fault:

* `Tracker` records every `ConversationItemAdded` and every `ErrorEvent`, so a case can show
  that no item that entered the history ever left it, and that errors reached the app as
  events (never as exceptions escaping into the test's code);
* `check_heard_contract` compares the history with what the recorder saw the sink play: each
  played segment is in the history with exactly its played ms, the text is a word-boundary
  prefix of what the provider generated, and nothing unheard is there;
* `check_provider_matches` compares the *current* provider conversation (the last sim
  connection) with the heard history: no assistant item the caller did not hear, replayed
  texts equal the heard texts;
* `leak_check` snapshots `asyncio.all_tasks()` and open file descriptors before a case and
  asserts that, once everything is closed, nothing the case started is still running or open.

Waits use generous real-time limits and assert on state, never on elapsed time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from collections.abc import AsyncIterator
from typing import Any

from session_harness_support import RATE as RATE  # re-exported for the fault cases
from session_harness_support import FrameRecorder, SimHarness
from session_harness_support import server_vad as server_vad
from session_harness_support import silence as silence  # re-exported for the fault cases
from session_harness_support import speech as speech  # re-exported for the fault cases
from vocalis.conversation.items import (
    FunctionCallItem,
    FunctionCallOutputItem,
)
from vocalis.providers.openai.realtime import OpenAIRealtimeModel
from vocalis.runtime.agent import Agent
from vocalis.runtime.options import AgentSessionOptions
from vocalis.runtime.session import AgentSession
from vocalis.sim.server import SimServer
from vocalis.sim.session import SimSession
from vocalis.transports.memory import MemoryTransport
from vocalis.utils.clock import ManualClock

FAKE_KEY = "sk-test-reliability-0123456789abcdef"
WAIT = 20.0
FRAME_MS = 20.0


Harness = SimHarness  # the shared harness (tests/session_harness_support.py)


# --------------------------------------------------------------------------- invariants


def _words(text: str) -> list[str]:
    return re.findall(r"\S+", text)


def check_heard_contract(h: Harness) -> None:
    """The history says exactly what the caller heard (played ms from the recorder)."""
    history = h.session.history
    ids = [item.id for item in history]
    assert len(ids) == len(set(ids)), f"duplicate history ids: {ids}"
    messages = {i.id: i for i in h.assistant_messages()}
    for segment_id in h.recorder.order:
        played = h.recorder.played_ms(segment_id)
        if played <= 0:
            continue
        assert segment_id in messages, f"heard segment {segment_id} missing from history"
    for message in messages.values():
        assert message.played_ms is not None
        heard = h.recorder.played_ms(message.id)
        # A clear() counts the frame it lands in as played: at most one frame apart.
        assert abs(message.played_ms - heard) <= FRAME_MS + 0.5, (
            message.id,
            message.played_ms,
            heard,
        )
        assert message.played_ms > 0, f"unheard message {message.id} in history"
        generated = message.generated_text if message.generated_text is not None else message.text
        said, full = _words(message.text), _words(generated)
        assert said == full[: len(said)], f"{message.text!r} is not a prefix of {generated!r}"
        if not message.interrupted and message.cut_by is None:
            assert said == full, f"complete message {message.id} lost words"


def check_tools_exactly_once(h: Harness) -> None:
    """Every kept call has exactly one output, and no call id appears twice."""
    calls = [i for i in h.session.history if isinstance(i, FunctionCallItem)]
    outputs = [i for i in h.session.history if isinstance(i, FunctionCallOutputItem)]
    call_ids = [c.call_id for c in calls]
    assert len(call_ids) == len(set(call_ids)), call_ids
    output_ids = [o.call_id for o in outputs]
    assert sorted(output_ids) == sorted(call_ids), (call_ids, output_ids)


def check_nothing_lost(h: Harness) -> None:
    """Every item that ever entered the history is still there (by id)."""
    now = {item.id for item in h.session.history}
    lost = [item.id for item in h.tracker.added if item.id not in now]
    assert not lost, f"history lost items {lost}"


def check_provider_matches(h: Harness, sim: SimSession | None = None) -> None:
    """The provider remembers nothing the caller did not hear (the live connection)."""
    sim = sim or h.sim
    local = {i.id: i for i in h.assistant_messages()}
    for item in sim.conversation.items:
        if item.type != "message" or item.role != "assistant":
            continue
        assert item.id in local, f"provider keeps unheard assistant item {item.id} {item.text!r}"
    for created in h.created_items(sim):
        if created.get("type") != "message" or created.get("role") != "assistant":
            continue
        text = "".join(part.get("text", "") for part in created.get("content", []))
        item_id = created.get("id")
        assert item_id in local, f"replayed assistant item {item_id} ({text!r}) was never heard"
        assert text == local[item_id].text, (item_id, text, local[item_id].text)


def check_all(h: Harness) -> None:
    check_heard_contract(h)
    check_tools_exactly_once(h)
    check_nothing_lost(h)


def history_is_json(h: Harness) -> dict[str, Any]:
    """The saved form of the history (what the CLI writes) round-trips through JSON."""
    data = h.session.history_json()
    return dict(json.loads(json.dumps(data)))


# --------------------------------------------------------------------------- leaks


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@contextlib.asynccontextmanager
async def leak_check() -> AsyncIterator[None]:
    """No task the body started is still running afterwards, no file descriptor left open."""
    before_tasks = set(asyncio.all_tasks())
    before_fds = open_fds()
    yield
    current = asyncio.current_task()
    # Done-callbacks and socket closes complete on the next loop turns: wait for the state,
    # never for a fixed time.
    async with asyncio.timeout(WAIT):
        while True:
            alive = [t for t in asyncio.all_tasks() - before_tasks if t is not current]
            fds = open_fds()
            if not alive and fds <= before_fds:
                break
            await asyncio.sleep(0.01)
    assert not alive, f"tasks left running: {[t.get_name() for t in alive]}"
    assert fds <= before_fds, f"file descriptors leaked: {before_fds} -> {fds}"


async def assert_no_leaks_after(before_tasks: set[asyncio.Task[Any]], before_fds: int) -> None:
    """Same as `leak_check`, for callers that cannot use a context manager."""
    current = asyncio.current_task()
    alive: list[asyncio.Task[Any]] = []
    fds = open_fds()
    try:
        async with asyncio.timeout(WAIT):
            while True:
                alive = [t for t in asyncio.all_tasks() - before_tasks if t is not current]
                fds = open_fds()
                if not alive and fds <= before_fds:
                    return
                await asyncio.sleep(0.01)
    except TimeoutError:
        pass
    assert not alive, f"tasks left running: {[t.get_name() for t in alive]}"
    assert fds <= before_fds, f"file descriptors leaked: {before_fds} -> {fds}"


# --------------------------------------------------------------------------- the harness


@contextlib.asynccontextmanager
async def harness(
    scenario: dict[str, Any],
    *,
    agent: Agent | None = None,
    options: AgentSessionOptions | None = None,
    start: bool = True,
    transport: MemoryTransport | None = None,
    clock: ManualClock | None = None,
    model_kwargs: dict[str, Any] | None = None,
    check: bool = True,
) -> AsyncIterator[Harness]:
    """One session against one sim server; leak-checked and invariant-checked on exit.

    The checks run only when the body succeeded (a failing body reports its own error).
    """
    async with leak_check():
        clock = clock or ManualClock()
        async with SimServer(scenario=scenario, pace=0.0) as server:
            kwargs: dict[str, Any] = {"reconnect_backoff_s": 0.05}
            kwargs.update(model_kwargs or {})
            model = OpenAIRealtimeModel(
                api_key=FAKE_KEY, base_url=server.url.removesuffix("/realtime"), **kwargs
            )
            recorder = FrameRecorder()
            if transport is None:
                transport = MemoryTransport(clock, on_frame=recorder)
            session = AgentSession(
                model,
                transport,
                clock=clock,
                options=options or AgentSessionOptions(turn_detection=server_vad()),
            )
            h = SimHarness(server, session, transport, clock, recorder)
            ok = False
            try:
                if start:
                    await session.start(agent or Agent("You are a test agent."))
                yield h
                ok = True
            finally:
                await session.aclose()
                await transport.aclose()
            if ok and check:
                check_all(h)
