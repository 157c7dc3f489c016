"""The harness the conformance, reliability and telemetry suites share.

A real `AgentSession` talks to the real `vocalis.sim` server (pace 0) through the real OpenAI
client; the caller side is a `MemoryTransport` whose playback clock is a `ManualClock`, so
"the caller heard 300 ms of item 2" is exact. `SimHarness` is the one harness class (the
suites used to have twin copies); each suite keeps only its own `harness()` setup and
checks. `SessionDriver` holds the methods that need no sim (the Gemini harness uses it too).

Waits on the network are real-time limits on *state*, never on elapsed time: the sockets run
in real time even though playback does not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import numpy as np

from vocalis.audio.espeak import synthesize
from vocalis.conversation.items import (
    ConversationItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    MessageItem,
)
from vocalis.providers.base import TurnDetection
from vocalis.providers.openai.realtime import OpenAIRealtimeSession
from vocalis.runtime.events import AgentState, ConversationItemAdded, ErrorEvent, SessionEvent
from vocalis.runtime.response import ResponseRun
from vocalis.runtime.session import AgentSession
from vocalis.sim.conversation import Item
from vocalis.sim.server import SimServer
from vocalis.sim.session import SimSession
from vocalis.transports.memory import MemoryTransport
from vocalis.utils.clock import ManualClock

RATE = 24000
E = TypeVar("E")
FRAME_S = 0.02

# The agent's states over a caller turn answered by a response that calls a tool and then its
# follow-up: each changes once per response, never `listening` between the two (heard
# contract 6).
TOOL_ROUND_STATES: list[AgentState] = [
    "listening",
    "thinking",
    "speaking",
    "thinking",
    "speaking",
    "listening",
]

_SPEECH_CACHE: dict[str, np.ndarray] = {}


def speech(text: str) -> np.ndarray:
    """Real synthesized caller speech (espeak-ng), 24 kHz int16; cached per text (read-only use)."""
    cached = _SPEECH_CACHE.get(text)
    if cached is None:
        clip = synthesize(text, sample_rate=RATE)
        cached = _SPEECH_CACHE[text] = np.asarray(clip.samples, dtype=np.int16)
    return cached


def silence(ms: float, rate: int = RATE) -> np.ndarray:
    return np.zeros(int(ms * rate / 1000), dtype=np.int16)


def server_vad(**overrides: Any) -> TurnDetection:
    values: dict[str, Any] = {"type": "server_vad", "silence_duration_ms": 300}
    values.update(overrides)
    return TurnDetection(**values)


class SessionDriver:
    """Methods over a harness's session, transport, clock and recorded runs.

    A mixin for the harness dataclasses: they declare the attributes, this supplies the
    behaviour. `wait_s` is the harness's real-time limit for one wait.
    """

    session: AgentSession
    transport: MemoryTransport
    clock: ManualClock
    recorder: FrameRecorder
    runs: list[ResponseRun]
    wait_s: ClassVar[float] = 15.0

    def segment_started(self, item_id: str) -> bool:
        """Segment `item_id` has played at least one frame (the caller heard it begin)."""
        return bool(self.recorder.pieces_of(item_id))

    def watch_runs(self) -> None:
        """Record every ResponseRun the session starts (the session forgets settled ones)."""
        self.session.on_response(self.runs.append)

    def quiet(self) -> bool:
        """No response running or being requested, no history re-sync due or running."""
        snap = self.session.snapshot()
        return not (snap.responses or snap.requesting or snap.resync_pending)

    async def until(self, predicate: Callable[[], bool], within: float | None = None) -> None:
        """Wait (real time, playback clock frozen) until `predicate()` holds."""
        async with asyncio.timeout(self.wait_s if within is None else within):
            while not predicate():  # noqa: ASYNC110 - polls state owned by other tasks
                await asyncio.sleep(0.002)

    async def response(self, index: int, *, generated: bool = True) -> ResponseRun:
        """The index-th response (0-based); with `generated`, once the provider finished it."""
        await self.until(lambda: len(self.runs) > index)
        run = self.runs[index]
        if generated:
            await self.until(lambda: run.generation.done.done())
        return run

    async def play(self, seconds: float) -> None:
        """Let `seconds` of playback happen, one 20 ms frame at a time."""
        for _ in range(round(seconds / FRAME_S)):
            await self.clock.advance(FRAME_S)

    async def play_until(self, predicate: Callable[[], bool], limit_s: float = 60.0) -> None:
        """Advance playback until `predicate()` holds (each harness knows its provider)."""
        raise NotImplementedError

    async def hear_reply(self, text: str, index: int) -> ResponseRun:
        """The caller says `text`; the index-th reply plays to its end and the session idles."""
        self.say(text)
        run = await self.response(index)
        await self.play_until(lambda: run.settled and self.session.snapshot().idle)
        return run

    def say(self, text: str, trailing_silence_ms: float = 700) -> None:
        """The caller says `text` (pushed at once; the server VAD finds speech and its end)."""
        self.transport.source.push(speech(text))
        if trailing_silence_ms:
            self.silence(trailing_silence_ms)

    def silence(self, ms: float = 700) -> None:
        self.transport.source.push(silence(ms))

    def assistant_messages(self) -> list[MessageItem]:
        return [
            i for i in self.session.history if isinstance(i, MessageItem) and i.role == "assistant"
        ]

    def user_messages(self) -> list[MessageItem]:
        return [i for i in self.session.history if isinstance(i, MessageItem) and i.role == "user"]


# --------------------------------------------------------------------------- the sim harness


@dataclass(frozen=True)
class PlayedPiece:
    """One piece of agent audio as the caller heard it (from the sink's frame callback)."""

    segment_id: str
    at: float
    samples: int
    # Offset (ms) of the first sample louder than -50 dBFS in this piece, if any.
    first_loud_ms: float | None


class FrameRecorder:
    """What the caller heard: every played piece, per segment, in order."""

    def __init__(self) -> None:
        self.pieces: list[PlayedPiece] = []
        self.order: list[str] = []  # segment ids in the order they first played

    def __call__(self, samples: np.ndarray, segment_id: str, at: float) -> None:
        loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 100)
        first = float(loud[0]) * 1000.0 / RATE if loud.size else None
        if segment_id not in self.order:
            self.order.append(segment_id)
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
class Tracker:
    """Every item that entered the history and every error event, in order."""

    added: list[ConversationItem] = field(default_factory=list)
    errors: list[ErrorEvent] = field(default_factory=list)

    def attach(self, session: AgentSession) -> None:
        session.on(ConversationItemAdded, lambda e: self.added.append(e.item))
        session.on(ErrorEvent, self.errors.append)

    def codes(self) -> list[str | None]:
        return [e.code for e in self.errors]


@dataclass
class SimHarness(SessionDriver):
    server: SimServer
    session: AgentSession
    transport: MemoryTransport
    clock: ManualClock
    recorder: FrameRecorder = field(default_factory=FrameRecorder)
    tracker: Tracker = field(default_factory=Tracker)
    runs: list[ResponseRun] = field(default_factory=list)
    wait_s: ClassVar[float] = 20.0

    def __post_init__(self) -> None:
        self.watch_runs()
        self.tracker.attach(self.session)

    # ------------------------------------------------------------------ the sim side

    @property
    def sim(self) -> SimSession:
        """The newest provider connection."""
        return self.server.sessions[-1]

    async def sim_session(self, n: int) -> SimSession:
        """The n-th (1-based) provider connection."""
        return await self.server.wait_for_session(n, within=self.wait_s)

    @property
    def provider_connected(self) -> bool:
        """The session's OpenAI provider has its socket open (after a drop: reconnected)."""
        provider = self.session.provider
        return isinstance(provider, OpenAIRealtimeSession) and provider.connected

    def client_events(self, prefix: str, sim: SimSession | None = None) -> list[dict[str, Any]]:
        """Client events of one connection (the newest by default) whose type starts so."""
        events = (sim or self.sim).client_events
        return [e for e in events if str(e["type"]).startswith(prefix)]

    def created_items(self, sim: SimSession | None = None) -> list[dict[str, Any]]:
        return [e["item"] for e in self.client_events("conversation.item.create", sim)]

    def server_items(self) -> list[Item]:
        return list(self.sim.conversation.items)

    def server_item(self, item_id: str) -> Item:
        """The newest connection's copy of an item; missing is a test failure."""
        item = self.sim.conversation.get(item_id)
        assert item is not None, f"{item_id} is not in the provider's conversation"
        return item

    def server_has(self, item_id: str) -> bool:
        return self.sim.conversation.get(item_id) is not None

    # ------------------------------------------------------------------ waiting (real time)

    async def settled(self) -> None:
        """No response running or being requested, no history re-sync due or running."""
        await self.until(self.quiet)

    async def event(self, kind: type[E], predicate: Callable[[E], bool] = lambda _e: True) -> E:
        """The first session event of `kind` matching `predicate` (waits for it)."""
        found: list[E] = []

        def check() -> bool:
            found[:] = [e for e in self.session.event_log if isinstance(e, kind) and predicate(e)]
            return bool(found)

        await self.until(check)
        return found[0]

    def events(self, kind: type[E]) -> list[E]:
        return [e for e in self.session.event_log if isinstance(e, kind)]

    def log(self) -> list[SessionEvent]:
        return self.session.event_log

    # ------------------------------------------------------------------ playback (clock)

    def wire_in_flight(self) -> bool:
        """The sim finished a response the client has not finished yet.

        Its last frames are still on the loopback wire: delivery runs in real time (the
        kernel hands the bytes over a scheduler tick or more after the sim's write, longer on a
        loaded machine) and is invisible to the event loop until they land, so
        `ManualClock.advance` cannot wait for them. Playing on meanwhile would let the caller
        hear silence the provider never sent — past the 3 s stall watchdog under CPU load.
        """
        if not self.server.sessions or self.sim.closed:
            return False
        finished = {
            e["response"].get("id")
            for e in self.sim.server_events
            if e.get("type") == "response.done" and isinstance(e.get("response"), dict)
        }
        return any(
            run.response_id in finished and not run.generation.done.done() for run in self.runs
        )

    async def play_until(self, predicate: Callable[[], bool], limit_s: float = 60.0) -> None:
        """Advance playback frame by frame until `predicate()` holds.

        Playback time stands still while the sim's frames are still reaching the client
        (`wire_in_flight`): the provider is never made to look stalled by the test rig.
        """
        steps = 0
        while not predicate():
            if self.wire_in_flight():
                await self.until(lambda: not self.wire_in_flight())
            await self.clock.advance(FRAME_S)
            steps += 1
            if steps * FRAME_S > limit_s:
                raise AssertionError("condition not reached within the playback limit")
            if steps % 25 == 0:
                await asyncio.sleep(0.001)  # loopback delivery runs in real time

    async def finish(self, run: ResponseRun) -> None:
        """Play until `run` settled (its audio out, its ledger applied)."""
        await self.play_until(lambda: run.settled)

    # ------------------------------------------------------------------ caller

    def start_talking(self, text: str) -> None:
        """The caller starts talking over the agent; `silence()` later ends the turn."""
        self.transport.source.push(speech(text))

    async def turn(self, text: str, index: int) -> ResponseRun:
        """The caller says `text`; returns the `index`-th response once played out."""
        self.say(text)
        run = await self.response(index, generated=False)
        await self.finish(run)
        return run

    # ------------------------------------------------------------------ local side

    def calls(self) -> list[FunctionCallItem]:
        return [i for i in self.session.history if isinstance(i, FunctionCallItem)]

    def outputs(self) -> list[FunctionCallOutputItem]:
        return [i for i in self.session.history if isinstance(i, FunctionCallOutputItem)]
