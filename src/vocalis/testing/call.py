"""`AgentTest`: one agent, one call against the embedded sim, with time in the test's hands.

Why it is fast and deterministic: the model is the real `vocalis.sim` server generating at
pace 0 (as fast as the socket allows), the client is the real OpenAI client, and the caller's
side is a `MemoryTransport` whose playback clock is a `ManualClock`. Nothing plays until the
test advances the clock, and it only advances while there is audio to play — so "the caller
heard 1500 ms of the answer" is exact, a long answer plays in microseconds, and the machine's
speed never changes the outcome. Waits on the network are bounded by `timeout_s` of real time
and watch *state* (the agent back to listening, every response settled), never elapsed time.

    async with AgentTest(agent, scenario={"responses": [{"say": "Hello!"}]}) as call:
        turn = await call.user_says("Hi")
        turn.expect_said("Hello")
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, get_args

import numpy as np

from vocalis.audio.espeak import synthesize
from vocalis.audio.frame import AudioFrame
from vocalis.conversation.items import MessageItem
from vocalis.providers.base import TurnDetection
from vocalis.providers.openai.realtime import OpenAIRealtimeModel
from vocalis.runtime.agent import Agent
from vocalis.runtime.events import SessionEvent, TurnMetrics
from vocalis.runtime.options import AgentSessionOptions
from vocalis.runtime.session import AgentSession
from vocalis.sim.scenario import Scenario
from vocalis.sim.server import SimServer
from vocalis.sim.session import SimSession
from vocalis.testing.expect import Transcript
from vocalis.transports.file import load_input_wav
from vocalis.transports.memory import MemoryTransport
from vocalis.utils.clock import ManualClock

FRAME_S = 0.02
# How long the caller stays quiet after a spoken turn: longer than the turn detection's
# silence window, so the server ends the turn.
TRAILING_SILENCE_MS = 700
# Real time between two looks at state owned by the network tasks.
_POLL_S = 0.001

Wait = Literal["idle", "speaking"]
# The `agent_test` fixture: `await agent_test(agent, scenario, **options)` opens a call.
StartCall = Callable[..., Awaitable["AgentTest"]]
ScenarioLike = Scenario | str | Path | dict[str, Any] | None


def default_options() -> AgentSessionOptions:
    """Server VAD with a short silence window, and caller transcripts from the scenario."""
    return AgentSessionOptions(
        turn_detection=TurnDetection(silence_duration_ms=300),
        input_transcription_model="gpt-4o-mini-transcribe",
        event_log_limit=None,
        event_log_bytes=None,
    )


class AgentTest:
    """Drives one test call; see the module docstring and docs/testing-with-sim-server.md.

    Args:
        agent: the agent under test.
        scenario: what the simulated model answers (a mapping, a YAML/JSON path or a
            `Scenario`; the schema is in docs/sim-server.md). None: built-in sentences.
        options: session options (default: `default_options()`).
        timeout_s: real-time bound on each wait for the network or a tool.
        voice: the espeak-ng voice for `user_speaks(text)`.
    """

    def __init__(
        self,
        agent: Agent,
        scenario: ScenarioLike = None,
        *,
        options: AgentSessionOptions | None = None,
        timeout_s: float = 10.0,
        voice: str = "en-us",
    ) -> None:
        self.agent = agent
        self.clock = ManualClock()
        self.timeout_s = timeout_s
        self.voice = voice
        self._server = SimServer(scenario=scenario, pace=0.0)
        self._options = options or default_options()
        self._events: list[SessionEvent] = []
        self._session: AgentSession | None = None
        self._transport: MemoryTransport | None = None
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> AgentTest:
        await self._server.__aenter__()
        try:
            model = OpenAIRealtimeModel(
                api_key="sk-vocalis-test", base_url=self._server.url.removesuffix("/realtime")
            )
            self._transport = MemoryTransport(self.clock)
            session = AgentSession(model, self._transport, clock=self.clock, options=self._options)
            for kind in get_args(SessionEvent):
                session.on(kind, self._events.append)
            self._session = session
            await session.start(self.agent)
            await self.until_idle()  # a greeting plays before the first caller turn
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session, the transport and the sim (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._session is not None:
            await self._session.aclose()
        if self._transport is not None:
            await self._transport.aclose()
        await self._server.__aexit__(None, None, None)

    # ------------------------------------------------------------------ what the test reads

    @property
    def session(self) -> AgentSession:
        if self._session is None:
            raise RuntimeError("use `async with AgentTest(...)` first")
        return self._session

    @property
    def transport(self) -> MemoryTransport:
        if self._transport is None:
            raise RuntimeError("use `async with AgentTest(...)` first")
        return self._transport

    @property
    def sim(self) -> SimSession:
        """The simulated model's side (its conversation items, the events it received)."""
        return self._server.sessions[0]

    @property
    def transcript(self) -> Transcript:
        """Everything so far: the whole call's events and heard history."""
        return Transcript(self._events, self.session.history)

    # ------------------------------------------------------------------ the caller

    async def user_says(self, text: str, *, wait: Wait = "idle") -> Transcript:
        """The caller types `text`; returns what happened until the agent is done (or speaks)."""
        mark = self._mark()
        users = self._user_messages()
        self.transport.send_text(text)
        await self._until(lambda: self._user_messages() > users, f"the typed turn {text!r}")
        return await self._finish(mark, wait)

    async def user_speaks(self, speech: str | Path, *, wait: Wait = "idle") -> Transcript:
        """The caller speaks: `speech` is text (spoken by espeak-ng) or a WAV file's path.

        The audio goes out at once followed by silence; the server's VAD finds the turn (and,
        while the agent talks, the barge-in: playback stops where the clock stands).
        """
        mark = self._mark()
        users = self._user_messages()
        self.transport.source.push(self._audio(speech))
        self.transport.source.push(np.zeros(24 * TRAILING_SILENCE_MS, dtype=np.int16))
        await self._until(lambda: self._user_messages() > users, f"the spoken turn {speech!s}")
        return await self._finish(mark, wait)

    def _audio(self, speech: str | Path) -> AudioFrame:
        if isinstance(speech, Path):
            return load_input_wav(speech)
        clip = synthesize(speech, voice=self.voice, sample_rate=24000)
        return AudioFrame(np.asarray(clip.samples, dtype=np.int16), 24000)

    # ------------------------------------------------------------------ time

    async def play(self, seconds: float) -> None:
        """Let `seconds` of agent audio reach the caller (virtual time, 20 ms frames).

        Time only moves while the agent speaks: waiting for the model does not eat into it.
        """
        frames = round(seconds / FRAME_S)
        while frames > 0:
            await self._until(self._audio_due, "the agent to speak")
            await self.clock.advance(FRAME_S)
            frames -= 1

    async def until_idle(self) -> Transcript:
        """Play everything the agent says until it listens again with nothing pending."""
        mark = self._mark()
        await self._drain()
        return self._window(mark)

    # ------------------------------------------------------------------ internals

    def _mark(self) -> tuple[int, set[str]]:
        return len(self._events), {item.id for item in self.session.history}

    def _window(self, mark: tuple[int, set[str]]) -> Transcript:
        start, known = mark
        items = [item for item in self.session.history if item.id not in known]
        return Transcript(self._events[start:], items)

    async def _finish(self, mark: tuple[int, set[str]], wait: Wait) -> Transcript:
        if wait == "speaking":
            await self._until(lambda: self.session.agent_state == "speaking", "the agent to speak")
        else:
            await self._drain()
        return self._window(mark)

    def _user_messages(self) -> int:
        return sum(
            1
            for item in self.session.history
            if isinstance(item, MessageItem) and item.role == "user"
        )

    def _audio_due(self) -> bool:
        """Agent audio is waiting for the clock (the only time virtual time may pass)."""
        return self.session.agent_state == "speaking" or self.transport.sink.playing

    def _idle(self) -> bool:
        session = self.session
        if session.agent_state != "listening":
            return False
        if any(not run.future.done() for run in session.tool_runs):
            return False
        types = [event["type"] for event in self.sim.server_events]
        done = types.count("response.done")
        settled = sum(1 for event in self._events if isinstance(event, TurnMetrics))
        return types.count("response.created") == done and settled >= done

    async def _drain(self) -> None:
        """Advance playback while the agent speaks; wait (real time) while it thinks."""
        async with asyncio.timeout(self.timeout_s):
            while not self._idle():
                if self._audio_due():
                    await self.clock.advance(FRAME_S)
                else:
                    await asyncio.sleep(_POLL_S)

    async def _until(self, predicate: Callable[[], bool], what: str) -> None:
        try:
            async with asyncio.timeout(self.timeout_s):
                while not predicate():  # noqa: ASYNC110 - state owned by network tasks
                    await asyncio.sleep(_POLL_S)
        except TimeoutError:
            raise AssertionError(
                f"timed out after {self.timeout_s:g} s waiting for {what}\n"
                f"what happened:\n{self.transcript.summary()}"
            ) from None
