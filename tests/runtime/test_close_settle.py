"""Closing a session under open responses: what was heard is recorded, in bounded time.

A sink may answer a clear late (a browser page replies within its own timeout), so the
close waits for the cleared segments' results — all of them together, at most
`CLOSE_RESULT_WAIT_S` of session time, not that long per response: a call closing with 32
open responses once took a minute. Driven on a manual clock: the close is done exactly when
the clock passed one bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import pytest
from fake_provider import FakeMessage, FakeResponse, FakeSession

from vocalis.conversation.items import MessageItem
from vocalis.providers.base import Generation
from vocalis.runtime.agent import Agent
from vocalis.runtime.closing import CLOSE_RESULT_WAIT_S
from vocalis.runtime.events import ErrorEvent
from vocalis.runtime.session import AgentSession
from vocalis.transports.clocked import ClockedAudioSink
from vocalis.transports.memory import MemoryTransport
from vocalis.utils.clock import ManualClock, wait_idle


class LateClearSink(ClockedAudioSink):
    """A sink whose player answers a clear later (here: not before the close gave up):
    playback holds, and the segments stay without a result."""

    def clear(self) -> None:
        self.pause()


async def test_close_waits_for_every_cleared_segment_at_once() -> None:
    clock = ManualClock()
    transport = MemoryTransport(clock)
    transport.sink = LateClearSink(clock, 24000, 20)
    provider = FakeSession()
    session = AgentSession(provider, transport, clock=clock)
    await session.start(Agent("Test agent."))
    try:
        # Three responses the provider started on its own, each still streaming audio.
        for text in ("First.", "Second.", "Third."):
            provider.start_response(FakeResponse([FakeMessage(text, 4000)], finish=False))
        await wait_idle()
        assert len(session.responses) == 3
        await clock.advance(0.5)
        closing = asyncio.ensure_future(session.aclose())
        await clock.advance(CLOSE_RESULT_WAIT_S - 0.1)
        assert not closing.done()
        await clock.advance(0.1)
        assert closing.done()
        await closing
        # No result came: nothing counts as heard, and no response is left open.
        assert not [i for i in session.history if isinstance(i, MessageItem)]
        assert session.responses == []
    finally:
        await session.aclose()
        await transport.aclose()


class CancelRacingProvider(FakeSession):
    """A provider whose `response.created` arrives in the very step the request is
    cancelled: the request returns its response anyway (as `asyncio.wait_for` on Python 3.11
    does when its result and the cancel meet)."""

    def __init__(self) -> None:
        super().__init__()
        self.answer: asyncio.Future[None] | None = None

    async def generate_reply(self, **kwargs: Any) -> Generation:
        self.answer = asyncio.get_running_loop().create_future()
        with contextlib.suppress(asyncio.CancelledError):
            await self.answer
        return await super().generate_reply(**kwargs)


async def test_a_reply_created_while_the_session_closes_is_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    transport = MemoryTransport(clock)
    provider = CancelRacingProvider()
    session = AgentSession(provider, transport, clock=clock)
    await session.start(Agent("Test agent."))
    errors: list[ErrorEvent] = []
    session.on(ErrorEvent, errors.append)
    try:
        handle = session.generate_reply()
        await wait_idle()
        assert provider.answer is not None  # the request is in flight
        with caplog.at_level(logging.ERROR):
            await session.aclose()
        assert errors == []
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert handle.done and handle.interrupted  # the reply will never play
        assert "response.create" in provider.kinds()
    finally:
        await transport.aclose()
