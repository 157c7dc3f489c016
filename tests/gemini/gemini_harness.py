"""Conformance harness for Gemini: `AgentSession` -> Gemini client -> Gemini sim, real sockets.

Same shape as `tests/conformance/conformance_support.py` (playback on a `ManualClock`, waits
on state), with the Gemini sim's record of what the *service* holds: `service_texts()` is the
conversation of the connection currently serving the session (after a re-seed, the fresh one).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from session_harness_support import FRAME_S, FrameRecorder, SessionDriver, server_vad, speech
from vocalis.conversation.items import FunctionCallItem, FunctionCallOutputItem, MessageItem
from vocalis.providers.gemini import GeminiRealtimeModel, GeminiRealtimeSession, HeardStrategy
from vocalis.runtime.agent import Agent
from vocalis.runtime.options import AgentSessionOptions
from vocalis.runtime.response import ResponseRun
from vocalis.runtime.session import AgentSession
from vocalis.sim.gemini import DIALECT, GeminiConnection, GeminiSims, sessions_of
from vocalis.sim.server import SimServer
from vocalis.transports.memory import MemoryTransport
from vocalis.utils.clock import ManualClock

from .sim_support import assert_wire_valid

MODEL = "gemini-2.5-flash-native-audio-preview-09-2025"
E = TypeVar("E")


@dataclass
class GeminiHarness(SessionDriver):
    server: SimServer
    session: AgentSession
    transport: MemoryTransport
    clock: ManualClock
    recorder: FrameRecorder
    model: GeminiRealtimeModel
    runs: list[ResponseRun] = field(default_factory=list)
    wait_s: ClassVar[float] = 20.0

    @property
    def sims(self) -> GeminiSims:
        return sessions_of(self.server)

    @property
    def provider(self) -> GeminiRealtimeSession:
        provider = self.session.provider
        assert isinstance(provider, GeminiRealtimeSession)
        return provider

    def serving(self) -> GeminiConnection:
        """The sim connection behind the client's live socket (the newest one)."""
        return self.sims.connections[-1]

    def service_texts(self) -> list[tuple[str, str]]:
        """(role, text) of every turn the serving Gemini session holds, in order."""
        return list(self.serving().session.history.texts())

    def local_texts(self) -> list[tuple[str, str]]:
        """(role, text) of the local (heard) history, roles as Gemini names them."""
        out = []
        for item in self.session.history:
            if isinstance(item, MessageItem) and item.text.strip():
                out.append(("model" if item.role == "assistant" else "user", item.text))
        return out

    def calls(self) -> list[FunctionCallItem]:
        return [i for i in self.session.history if isinstance(i, FunctionCallItem)]

    def outputs(self) -> list[FunctionCallOutputItem]:
        return [i for i in self.session.history if isinstance(i, FunctionCallOutputItem)]

    async def settled(self) -> None:
        await self.until(self.quiet)

    async def event(self, kind: type[E]) -> E:
        """The first session event of ``kind`` (waits for it)."""
        await self.until(lambda: any(isinstance(e, kind) for e in self.session.event_log))
        return next(e for e in self.session.event_log if isinstance(e, kind))

    async def play_until(self, predicate: Callable[[], bool], limit_s: float = 60.0) -> None:
        """Advance playback frame by frame until `predicate()` holds."""
        steps = 0
        while not predicate():
            await self.clock.advance(FRAME_S)
            steps += 1
            assert steps * FRAME_S <= limit_s, "condition not reached within the playback limit"

    def start_talking(self, text: str) -> None:
        """The caller starts talking over the agent; `silence()` later ends the turn."""
        self.transport.source.push(speech(text))


@contextlib.asynccontextmanager
async def gemini_harness(
    scenario: dict[str, Any],
    *,
    strategy: HeardStrategy = HeardStrategy.RESEED,
    pace: float = 0.0,
    agent: Agent | None = None,
    options: AgentSessionOptions | None = None,
) -> AsyncIterator[GeminiHarness]:
    clock = ManualClock()
    async with SimServer(scenario=scenario, pace=pace, dialects=[DIALECT]) as server:
        model = GeminiRealtimeModel(
            MODEL,
            api_key="test-gemini-key",
            base_url=server.base_url,
            heard_strategy=strategy,
            reconnect_backoff_s=0.05,
        )
        recorder = FrameRecorder()
        transport = MemoryTransport(clock, on_frame=recorder)
        session = AgentSession(
            model,
            transport,
            clock=clock,
            options=options or AgentSessionOptions(turn_detection=server_vad()),
        )
        h = GeminiHarness(server, session, transport, clock, recorder, model)
        h.watch_runs()
        try:
            await session.start(agent or Agent("You are a test agent."))
            yield h
        finally:
            await session.aclose()
            await transport.aclose()
        # What went over the wire both ways is what google-genai's types accept.
        assert assert_wire_valid(h.sims) > 0
