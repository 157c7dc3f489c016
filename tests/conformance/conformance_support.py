"""Harness for the conformance scenarios: the real pieces, with time in the test's hands.

`AgentSession` talks to the real `vocalis.sim` server (pace 0: every response is generated as
fast as the socket allows) through the real OpenAI client; the caller side is a
`MemoryTransport` whose playback clock is a `ManualClock`. Nothing plays until the test
advances the clock, so "the caller heard 300 ms of item 2" is exact and independent of the
machine's speed. Waits on the network use generous real-time timeouts and assert on state,
never on elapsed wall-clock time.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from session_harness_support import FRAME_S, RATE, SessionDriver, server_vad, speech
from session_harness_support import silence as silence  # re-exported for the scenarios
from vocalis.conversation.items import FunctionCallItem, FunctionCallOutputItem
from vocalis.providers.openai.realtime import OpenAIRealtimeModel
from vocalis.runtime.agent import Agent
from vocalis.runtime.events import SessionEvent
from vocalis.runtime.options import AgentSessionOptions
from vocalis.runtime.response import ResponseRun
from vocalis.runtime.session import AgentSession
from vocalis.sim.server import SimServer
from vocalis.sim.session import SimSession
from vocalis.transports.memory import MemoryTransport
from vocalis.utils.clock import ManualClock

FAKE_KEY = "sk-test-conformance-0123456789"
WAIT = 15.0


@dataclass(frozen=True)
class PlayedPiece:
    """One piece of agent audio as the caller heard it (from the sink's frame callback)."""

    segment_id: str
    at: float
    samples: int
    # Offset (ms) of the first sample louder than -50 dBFS in this piece, if any.
    first_loud_ms: float | None


class FrameRecorder:
    def __init__(self) -> None:
        self.pieces: list[PlayedPiece] = []

    def __call__(self, samples: np.ndarray, segment_id: str, at: float) -> None:
        loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 100)
        first = float(loud[0]) * 1000.0 / RATE if loud.size else None
        self.pieces.append(PlayedPiece(segment_id, at, int(samples.shape[0]), first))

    def played_ms(self, segment_id: str) -> float:
        return sum(p.samples for p in self.pieces if p.segment_id == segment_id) * 1000.0 / RATE

    def pieces_of(self, segment_id: str) -> list[PlayedPiece]:
        return [p for p in self.pieces if p.segment_id == segment_id]

    def first_voice_at(self) -> float | None:
        for piece in self.pieces:
            if piece.first_loud_ms is not None:
                return piece.at + piece.first_loud_ms / 1000.0
        return None


@dataclass
class Harness(SessionDriver):
    server: SimServer
    session: AgentSession
    transport: MemoryTransport
    clock: ManualClock
    recorder: FrameRecorder
    runs: list[ResponseRun] = field(default_factory=list)
    wait_s: ClassVar[float] = WAIT

    @property
    def sim(self) -> SimSession:
        return self.server.sessions[0]

    # ------------------------------------------------------------------ waiting (real time)

    async def event(
        self, kind: type[Any], predicate: Callable[[Any], bool] = lambda _e: True
    ) -> Any:
        found: list[Any] = []

        def check() -> bool:
            for e in self.session.event_log:
                if isinstance(e, kind) and predicate(e):
                    found.append(e)
                    return True
            return False

        await self.until(check)
        return found[0]

    def events(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.session.event_log if isinstance(e, kind)]

    async def settled(self) -> None:
        """No response running, nothing queued, audio of every response resolved."""
        await self.until(self.quiet)

    # ------------------------------------------------------------------ playback (clock)

    async def play_until(self, predicate: Callable[[], bool], limit_s: float = 60.0) -> None:
        """Advance playback frame by frame until `predicate()` holds."""
        steps = 0
        while not predicate():
            await self.clock.advance(FRAME_S)
            steps += 1
            if steps * FRAME_S > limit_s:
                raise AssertionError("condition not reached within the playback limit")

    def started(self, item_id: str) -> bool:
        for verdict in self.transport.text.verdicts:
            if verdict.segment_id == item_id:
                return True
        return self.segment_started(item_id)

    def segment_started(self, item_id: str) -> bool:
        for seg in list(self.transport.sink._segments):
            if seg.id == item_id:
                return seg.started.done() and not seg.started.cancelled()
        return False

    # ------------------------------------------------------------------ caller

    def start_talking(self, text: str) -> None:
        """The caller starts talking over the agent; `silence()` later ends the turn.

        Real speech lasts longer than a round trip to the provider; pushing the words and the
        trailing silence in two steps keeps that order (the barge-in is handled before the
        caller's turn ends).
        """
        self.transport.source.push(speech(text))

    # ------------------------------------------------------------------ provider side

    def client_events(self, prefix: str) -> list[dict[str, Any]]:
        return [e for e in self.sim.client_events if str(e["type"]).startswith(prefix)]

    def server_items(self) -> list[Any]:
        return list(self.sim.conversation.items)

    def server_item(self, item_id: str) -> Any:
        return self.sim.conversation.get(item_id)

    # ------------------------------------------------------------------ local side

    def calls(self) -> list[FunctionCallItem]:
        return [i for i in self.session.history if isinstance(i, FunctionCallItem)]

    def outputs(self) -> list[FunctionCallOutputItem]:
        return [i for i in self.session.history if isinstance(i, FunctionCallOutputItem)]

    def log(self) -> list[SessionEvent]:
        return self.session.event_log


def check_provider_side(h: Harness) -> None:
    """The provider conversation on every connection the sim saw keeps the tool and audio rules.

    * each function call has exactly one output, after it, and no output lacks its call
      (checked on the last connection: earlier ones died mid-turn by design);
    * the caller's audio turns stay audio: every item the server committed from the input
      buffer is still there as `input_audio` (or was never deleted), and no client `create`
      ever re-made one as text under its id.
    """
    sims = h.server.sessions
    last = sims[-1].conversation.items
    positions = {item.id: i for i, item in enumerate(last)}
    calls = {i.call_id: positions[i.id] for i in last if i.type == "function_call"}
    outputs: dict[str | None, list[int]] = {}
    for item in last:
        if item.type == "function_call_output":
            outputs.setdefault(item.call_id, []).append(positions[item.id])
    for call_id, at in calls.items():
        assert len(outputs.get(call_id, [])) == 1, f"call {call_id}: outputs {outputs}"
        assert outputs[call_id][0] > at, f"output of {call_id} before its call"
    assert set(outputs) <= set(calls), f"outputs without their call: {set(outputs) - set(calls)}"
    for sim in sims:
        committed = [
            e["item_id"] for e in sim.server_events if e["type"] == "input_audio_buffer.committed"
        ]
        deleted = {
            e["item_id"] for e in sim.client_events if e["type"] == "conversation.item.delete"
        }
        created = {
            e["item"].get("id")
            for e in sim.client_events
            if e["type"] == "conversation.item.create"
        }
        for item_id in committed:
            assert item_id not in deleted, f"caller audio {item_id} deleted"
            assert item_id not in created, f"caller audio {item_id} re-created as text"
            if not sim.closed:
                item = sim.conversation.get(item_id)
                assert item is not None and item.content[0]["type"] == "input_audio"


@contextlib.asynccontextmanager
async def harness(
    scenario: dict[str, Any],
    *,
    agent: Agent | None = None,
    options: AgentSessionOptions | None = None,
    start: bool = True,
) -> AsyncIterator[Harness]:
    clock = ManualClock()
    async with SimServer(scenario=scenario, pace=0.0) as server:
        model = OpenAIRealtimeModel(api_key=FAKE_KEY, base_url=server.url.removesuffix("/realtime"))
        recorder = FrameRecorder()
        transport = MemoryTransport(clock, on_frame=recorder)
        session = AgentSession(
            model,
            transport,
            clock=clock,
            options=options or AgentSessionOptions(turn_detection=server_vad()),
        )
        h = Harness(server, session, transport, clock, recorder)
        h.watch_runs()
        try:
            if start:
                await session.start(agent or Agent("You are a test agent."))
            yield h
        finally:
            await session.aclose()
            await transport.aclose()
