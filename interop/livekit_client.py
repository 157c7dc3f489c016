"""LiveKit Agents (OpenAI realtime plugin) as a client of `vocalis sim-server` (make interop).

Runs in its own virtualenv (interop/requirements-livekit.txt), started by interop/run.py:

    python livekit_client.py BASE_URL CALLER_DIR [CERT]

With CERT (the sim's TLS certificate), the agent uses LiveKit's Gemini Live plugin
(``livekit-plugins-google``, i.e. google-genai) against ``sim-server --protocol gemini --tls``
instead of the OpenAI plugin: the same agent, the same script.

A LiveKit ``AgentSession`` with a ``RealtimeModel`` pointed at the sim, a ``get_weather`` tool,
no room: the caller is an ``AudioInput`` streaming 20 ms frames at real time (the WAV lines in
CALLER_DIR, silence between them), the agent's audio goes to an ``AudioOutput`` that plays it
at real time and reports the played position to LiveKit, which is what LiveKit truncates with
on a barge-in. The script: question -> (preamble + tool call, answer) -> second question ->
barge-in during the long answer -> short answer. The sim judges the result.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import time
import wave
from pathlib import Path

from livekit import rtc
from livekit.agents import Agent, AgentSession, function_tool, llm
from livekit.agents.voice.io import AudioInput, AudioOutput, AudioOutputCapabilities
from livekit.plugins import google, openai

RATE = 24000
FRAME = RATE // 50  # 20 ms


def _pcm(path: Path) -> bytes:
    with wave.open(str(path)) as wav:
        return wav.readframes(wav.getnframes())


class Caller(AudioInput):
    """Real-time caller audio: silence, with queued lines spoken when `say` is called."""

    def __init__(self) -> None:
        super().__init__(label="vocalis-interop-caller")
        self._pending = bytearray()
        self._next = time.monotonic()
        self.spoken = asyncio.Event()

    def say(self, pcm: bytes) -> None:
        self.spoken.clear()
        self._pending += pcm

    async def __anext__(self) -> rtc.AudioFrame:
        self._next += FRAME / RATE
        await asyncio.sleep(max(0.0, self._next - time.monotonic()))
        chunk = bytes(self._pending[: FRAME * 2])
        del self._pending[: FRAME * 2]
        if not self._pending:
            self.spoken.set()
        chunk = chunk.ljust(FRAME * 2, b"\0")
        return rtc.AudioFrame(chunk, RATE, 1, FRAME)


class Player(AudioOutput):
    """Plays the agent at real time (a clock, no device) and reports positions to LiveKit."""

    def __init__(self) -> None:
        super().__init__(
            label="vocalis-interop-player", capabilities=AudioOutputCapabilities(False)
        )
        self._queued_s = 0.0
        self._started: float | None = None
        self._task: asyncio.Task[None] | None = None
        self.segments_started = 0
        self.segments_finished = 0
        self.changed = asyncio.Event()

    def _bump(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self._started is None:
            self._started = time.monotonic()
            self.segments_started += 1
            self.on_playback_started(created_at=time.time())
            self._bump()
        self._queued_s += frame.samples_per_channel / frame.sample_rate

    def _played(self) -> float:
        if self._started is None:
            return 0.0
        return min(self._queued_s, time.monotonic() - self._started)

    def flush(self) -> None:
        super().flush()
        if self._started is None:
            return
        remaining = self._queued_s - self._played()
        self._task = asyncio.ensure_future(self._finish_after(remaining))

    async def _finish_after(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))
        self._end(interrupted=False)

    def clear_buffer(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._started is not None:
            self._end(interrupted=True)

    def _end(self, *, interrupted: bool) -> None:
        position = self._played()
        self._started, self._queued_s, self._task = None, 0.0, None
        self.segments_finished += 1
        self.on_playback_finished(playback_position=position, interrupted=interrupted)
        self._bump()

    async def wait(self, predicate: object) -> None:
        while not predicate():  # type: ignore[operator]
            await self.changed.wait()


@function_tool
async def get_weather(city: str) -> dict[str, object]:
    """Current weather for a city.

    Args:
        city: The city name.
    """
    return {"city": city, "sky": "sunny", "temperature_c": 22}


def realtime_model(base_url: str, cert: str | None) -> llm.RealtimeModel:
    if cert is None:
        return openai.realtime.RealtimeModel(base_url=base_url, api_key="sk-interop")
    # google-genai always connects with wss://: trust the sim's certificate (issue 21).
    from google.genai import types

    context = ssl.create_default_context(cafile=cert)
    options = types.HttpOptions(
        base_url=base_url, api_version="v1beta", async_client_args={"ssl": context}
    )
    return google.realtime.RealtimeModel(api_key="interop", http_options=options)


async def main(base_url: str, caller_dir: Path, cert: str | None) -> None:
    lines = [_pcm(caller_dir / f"line{i}.wav") for i in (1, 2, 3)]
    model = realtime_model(base_url, cert)
    session = AgentSession(llm=model)
    caller, player = Caller(), Player()
    session.input.audio = caller
    session.output.audio = player
    agent = Agent(instructions="You are a concise weather assistant.", tools=[get_weather])
    await session.start(agent, record=False)
    await asyncio.sleep(1.0)
    caller.say(lines[0])  # the question: a preamble and a tool call, then the answer
    await player.wait(lambda: player.segments_finished >= 2)
    await asyncio.sleep(1.0)
    caller.say(lines[1])  # the second question: a long answer ...
    await player.wait(lambda: player.segments_started >= 3)
    await asyncio.sleep(1.5)
    caller.say(lines[2])  # ... cut by the caller
    await player.wait(lambda: player.segments_finished >= 4)
    await asyncio.sleep(1.0)
    await session.aclose()
    await model.aclose()


if __name__ == "__main__":
    cert = sys.argv[3] if len(sys.argv) > 3 else None
    asyncio.run(asyncio.wait_for(main(sys.argv[1], Path(sys.argv[2]), cert), 120))
