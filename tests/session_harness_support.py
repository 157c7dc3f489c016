"""What the conformance and reliability harnesses share: caller audio and the session driver.

Both harnesses run a real `AgentSession` against the real `vocalis.sim` server with a
`ManualClock` for playback. The audio helpers and the run-watching, waiting and playback
methods were copies of each other; they live here once so a fix to how a test waits or
plays reaches both suites. Waits are real-time limits on *state*, never on elapsed time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np

from vocalis.audio.espeak import synthesize
from vocalis.conversation.items import MessageItem
from vocalis.providers.base import TurnDetection
from vocalis.runtime.response import ResponseRun
from vocalis.runtime.session import AgentSession
from vocalis.transports.memory import MemoryTransport
from vocalis.utils.clock import ManualClock

RATE = 24000
FRAME_S = 0.02

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
    runs: list[ResponseRun]
    wait_s: float = 15.0

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
