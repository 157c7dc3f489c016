"""A text-only transport: typed messages in, the agent's text out, no audio either way.

Why: talking to an agent must not need a microphone (`vocalis chat`, a CI check, a terminal
over SSH). With no audio sink the session asks the model for text output, so answers arrive
as text and nothing is "played"; the heard history then holds exactly what was shown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from vocalis.audio.frame import AudioFrame
from vocalis.transports.base import AudioSink, AudioSource, TextSink, Transport
from vocalis.utils.channel import Channel
from vocalis.utils.flag import Flag

__all__ = ["SilentSource", "TextTransport"]


class SilentSource(AudioSource):
    """A caller who never speaks: yields nothing and ends at the hang-up."""

    def __init__(self) -> None:
        self._hung_up = Flag()

    def close(self) -> None:
        self._hung_up.set()

    async def frames(self, sample_rate: int) -> AsyncIterator[AudioFrame]:
        await self._hung_up.wait()
        return
        yield  # an async generator that ends at the hang-up


class TextTransport(Transport):
    """Typed caller messages (`send()`), the agent's text to `text_sink`, `hang_up()` ends."""

    def __init__(self, text_sink: TextSink | None = None) -> None:
        self._source = SilentSource()
        self._typed: Channel[str] = Channel()
        self._text_sink = text_sink
        self._closed = Flag()

    @property
    def audio_in(self) -> AudioSource:
        return self._source

    @property
    def audio_out(self) -> AudioSink | None:
        return None

    @property
    def text_out(self) -> TextSink | None:
        return self._text_sink

    def text_in(self) -> AsyncIterator[str]:
        return aiter(self._typed)

    def send(self, text: str) -> None:
        """The caller types `text` (one message)."""
        self._typed.send(text)

    def hang_up(self) -> None:
        self._typed.close()
        self._source.close()
        self._closed.set()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def aclose(self) -> None:
        self.hang_up()
