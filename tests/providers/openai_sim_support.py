"""Shared helpers for the OpenAI client tests against the embedded `vocalis.sim` server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np

from vocalis.providers.base import (
    Generation,
    GenerationStarted,
    MessageGeneration,
    ProviderEvent,
    SessionOptions,
)
from vocalis.providers.openai.realtime import OpenAIRealtimeModel, OpenAIRealtimeSession
from vocalis.sim.server import SimServer

FAKE_KEY = "sk-test-DO-NOT-LOG-0123456789abcdef"
WAIT = 10.0
E = TypeVar("E")


def base_url(server: SimServer) -> str:
    return server.url.removesuffix("/realtime")


class EventReader:
    """Drains `session.events()` in the background so tests can await conditions on it."""

    def __init__(self, session: OpenAIRealtimeSession) -> None:
        self.events: list[ProviderEvent] = []
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._run(session))

    async def _run(self, session: OpenAIRealtimeSession) -> None:
        async for event in session.events():
            self.events.append(event)
            self._changed.set()
        self._changed.set()

    async def wait_for(
        self, predicate: Callable[[ProviderEvent], bool], within: float = WAIT
    ) -> ProviderEvent:
        seen = 0
        async with asyncio.timeout(within):
            while True:
                for event in self.events[seen:]:
                    if predicate(event):
                        return event
                seen = len(self.events)
                if self._task.done():
                    raise AssertionError(f"event stream ended; got {self.events!r}")
                self._changed.clear()
                await self._changed.wait()

    async def wait_type(self, kind: type[E], within: float = WAIT) -> E:
        event = await self.wait_for(lambda e: isinstance(e, kind), within)
        assert isinstance(event, kind)
        return event

    def of_type(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    async def aclose(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


@dataclass
class Played:
    """What a consumer got for one message (like the runtime's serial playout)."""

    message: MessageGeneration
    samples: int
    text: str


async def consume(generation: Generation) -> list[Played]:
    """Read every message of a generation serially, as the runtime's playout does."""
    out: list[Played] = []
    async with asyncio.timeout(WAIT):
        async for message in generation.messages:
            samples = 0
            async for chunk in message.audio:
                samples += len(chunk)
            text = "".join([t async for t in message.text])
            out.append(Played(message, samples, text))
    return out


async def wait_audio(message: MessageGeneration, ms: float) -> int:
    """Pull audio from `message` until at least `ms` were received; returns samples pulled."""
    samples = 0
    async with asyncio.timeout(WAIT):
        while message.audio_received_ms < ms:
            chunk = await message.audio.recv()
            samples += len(chunk)
    return samples


async def until(predicate: Callable[[], bool], within: float = WAIT) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - polls state owned by others
            await asyncio.sleep(0.005)


def tone(ms: int, amplitude: int = 8000, rate: int = 24000) -> np.ndarray:
    t = np.arange(ms * rate // 1000) / rate
    return (amplitude * np.sin(2 * np.pi * 220 * t)).astype(np.int16)


def silence(ms: int, rate: int = 24000) -> np.ndarray:
    return np.zeros(ms * rate // 1000, dtype=np.int16)


def append_in_frames(session: OpenAIRealtimeSession, samples: np.ndarray, frame: int = 480) -> None:
    for start in range(0, len(samples), frame):
        session.append_audio(samples[start : start + frame])


@contextlib.asynccontextmanager
async def sim_session(
    scenario: dict[str, Any] | None = None,
    options: SessionOptions | None = None,
    server_kwargs: dict[str, Any] | None = None,
    **model_kwargs: Any,
) -> AsyncIterator[tuple[SimServer, OpenAIRealtimeSession, EventReader]]:
    async with SimServer(scenario=scenario, pace=0.0, **(server_kwargs or {})) as server:
        model = OpenAIRealtimeModel(api_key=FAKE_KEY, base_url=base_url(server), **model_kwargs)
        session = await model.connect(options or SessionOptions(turn_detection=None))
        reader = EventReader(session)
        try:
            yield server, session, reader
        finally:
            await session.aclose()
            await reader.aclose()


def started(reader: EventReader) -> list[Generation]:
    return [e.generation for e in reader.of_type(GenerationStarted)]


def client_types(events: list[dict[str, Any]]) -> list[str]:
    return [str(e["type"]) for e in events]
