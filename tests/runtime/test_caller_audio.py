"""Caller audio: forwarded inside the source's push, with no task waiting for the hang-up (#17).

A session used to keep a `caller-audio` task per call awaiting `AudioSource.deliver` only for
its end. A source fed by a callback now `forward`s; a source with only `frames()` is still
read by a task. Observed through `asyncio.all_tasks()` (the session names its tasks), the
provider's appended samples and the session's error events.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
from fake_provider import FakeSession, session_on

from vocalis.audio.frame import AudioFrame
from vocalis.runtime.events import ErrorEvent
from vocalis.transports.base import AudioSink, AudioSource, Transport
from vocalis.transports.memory import MemoryTransport
from vocalis.utils.clock import ManualClock, wait_idle

RATE = 24000


def audio_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().endswith("caller-audio")]


def frame(n: int = 480) -> np.ndarray:
    return np.full(n, 300, dtype=np.int16)


class FramesOnly(AudioSource):
    """A source that can only be iterated (as a file or a simulated caller is)."""

    def __init__(self) -> None:
        self.frames_sent = asyncio.Event()

    async def frames(self, sample_rate: int) -> AsyncIterator[AudioFrame]:
        for _ in range(3):
            yield AudioFrame(frame(), sample_rate)
        self.frames_sent.set()
        await asyncio.Event().wait()  # the caller stays on the line


class IteratedSourceTransport(Transport):
    """Caller audio from `source`, the agent's replies as text (no sink needed here)."""

    def __init__(self, source: AudioSource) -> None:
        self._source = source
        self._hung_up = asyncio.Event()

    @property
    def audio_in(self) -> AudioSource:
        return self._source

    @property
    def audio_out(self) -> AudioSink | None:
        return None

    async def wait_closed(self) -> None:
        await self._hung_up.wait()


class BrokenAppend(FakeSession):
    def append_audio(self, samples: np.ndarray) -> None:
        raise RuntimeError("socket gone")


async def test_caller_frames_reach_the_provider_with_no_task_waiting() -> None:
    provider, transport = FakeSession(), MemoryTransport(ManualClock(), RATE)
    transport.source.push(frame())  # before the session: forwarded once it starts
    async with session_on(provider, transport):
        await wait_idle()
        assert audio_tasks() == []
        assert provider.appended_samples == 480
        transport.source.push(frame())
        assert provider.appended_samples == 960  # inside the push


async def test_a_source_with_only_frames_is_read_by_a_task() -> None:
    source = FramesOnly()
    provider = FakeSession()
    async with session_on(provider, IteratedSourceTransport(source)):
        await source.frames_sent.wait()
        assert provider.appended_samples == 3 * 480
        assert len(audio_tasks()) == 1


async def test_a_failing_frame_ends_the_audio_and_is_reported() -> None:
    provider, transport = BrokenAppend(), MemoryTransport(ManualClock(), RATE)
    async with session_on(provider, transport) as session:
        errors: list[ErrorEvent] = []
        session.on(ErrorEvent, errors.append)
        await wait_idle()
        transport.source.push(frame())
        transport.source.push(frame())  # the source is closed by the failure: not forwarded
        await wait_idle()
        assert [e.message for e in errors] == [
            "session:caller-audio failed: RuntimeError: socket gone"
        ]


async def test_frames_after_the_session_closed_do_not_reach_the_provider() -> None:
    provider, transport = FakeSession(), MemoryTransport(ManualClock(), RATE)
    async with session_on(provider, transport) as session:
        await wait_idle()
        transport.source.push(frame())
        await session.aclose()
        transport.source.push(frame())
        assert provider.appended_samples == 480
