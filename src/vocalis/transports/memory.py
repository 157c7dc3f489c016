"""An in-process transport for tests and conformance runs.

Why it exists: the runtime's behaviour (segments, barge-in, history) must be testable without
sockets or sound cards, with time under the test's control. `MemoryTransport` pairs a source
the test feeds with caller audio, a `ClockedAudioSink` on the test's clock (so `played_ms` is
exact under a `ManualClock`), a recording text sink and a typed-text input.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from vocalis.audio.frame import AudioFrame, Int16Array
from vocalis.transports._source import ChannelAudioSource, FrameConverter, PcmToRate
from vocalis.transports.base import PlayoutResult, TextSink, Transport
from vocalis.transports.clocked import ClockedAudioSink, FrameCallback
from vocalis.utils.channel import Channel
from vocalis.utils.clock import Clock
from vocalis.utils.flag import Flag

__all__ = [
    "MemoryAudioSource",
    "MemoryTextSink",
    "MemoryTransport",
    "SegmentVerdict",
    "TextEvent",
]


class _FramesToRate:
    """Frames at any rate → frames at the consumer's rate (a converter per input rate)."""

    def __init__(self, sample_rate: int) -> None:
        self._rate = sample_rate
        self._by_rate: dict[int, PcmToRate] = {}

    def convert(self, item: AudioFrame) -> AudioFrame | None:
        if item.sample_rate == self._rate:
            return item
        converter = self._by_rate.get(item.sample_rate)
        if converter is None:
            converter = self._by_rate[item.sample_rate] = PcmToRate(item.sample_rate, self._rate)
        return converter.convert(item.samples)

    def tail(self) -> list[AudioFrame]:
        return [frame for converter in self._by_rate.values() for frame in converter.tail()]


class MemoryAudioSource(ChannelAudioSource[AudioFrame]):
    """Caller audio pushed by the test; `close()` is the hang-up.

    Frames are delivered as pushed (no pacing) and converted to the consumer's rate at the
    edge. Use `speak()` to push audio in real-time-paced frames on a clock. One consumer.
    """

    def __init__(self, sample_rate: int = 24000) -> None:
        super().__init__()
        self.sample_rate = sample_rate
        self._hung_up = Flag()

    def push(self, audio: AudioFrame | Int16Array) -> None:
        """Queue caller audio (an `AudioFrame` at any rate, or int16 mono at `sample_rate`)."""
        frame = audio if isinstance(audio, AudioFrame) else AudioFrame(audio, self.sample_rate)
        self._channel.send(frame if frame.channels == 1 else frame.to_mono())

    async def speak(
        self, audio: AudioFrame | Int16Array, clock: Clock, *, frame_ms: int = 20
    ) -> None:
        """Push `audio` as `frame_ms` frames paced on `clock` (a caller talking)."""
        frame = audio if isinstance(audio, AudioFrame) else AudioFrame(audio, self.sample_rate)
        step = frame.sample_rate * frame_ms // 1000
        start = clock.now()
        for k, offset in enumerate(range(0, frame.num_samples, step)):
            await clock.sleep_until(start + k * frame_ms / 1000.0)
            self.push(AudioFrame(frame.samples[offset : offset + step], frame.sample_rate))

    def close(self) -> None:
        """Hang up: the consumer gets the queued audio, then the stream ends."""
        super().close()
        self._hung_up.set()

    async def wait_closed(self) -> None:
        await self._hung_up.wait()

    def _converter(self, sample_rate: int) -> FrameConverter[AudioFrame]:
        return _FramesToRate(sample_rate)


@dataclass(frozen=True, slots=True)
class TextEvent:
    kind: str  # "agent_text" | "agent_segment_ended" | "user_transcript" | "agent_state" | "notice"
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SegmentVerdict:
    segment_id: str
    result: PlayoutResult
    heard_text: str


class MemoryTextSink(TextSink):
    """Records everything the runtime shows to the caller, in order."""

    def __init__(self) -> None:
        self.events: list[TextEvent] = []
        self.agent_texts: dict[str, str] = {}
        self.verdicts: list[SegmentVerdict] = []
        self.states: list[str] = []
        self.notices: list[str] = []
        self.user_transcripts: dict[str, str] = {}

    def agent_text(self, segment_id: str, text: str) -> None:
        self.agent_texts[segment_id] = self.agent_texts.get(segment_id, "") + text
        self.events.append(TextEvent("agent_text", {"segment_id": segment_id, "text": text}))

    def agent_segment_ended(self, segment_id: str, result: PlayoutResult, heard_text: str) -> None:
        self.verdicts.append(SegmentVerdict(segment_id, result, heard_text))
        self.events.append(
            TextEvent(
                "agent_segment_ended",
                {"segment_id": segment_id, "result": result, "heard_text": heard_text},
            )
        )

    def user_transcript(self, item_id: str, text: str, final: bool) -> None:
        if final:
            self.user_transcripts[item_id] = text
        self.events.append(
            TextEvent("user_transcript", {"item_id": item_id, "text": text, "final": final})
        )

    def agent_state(self, state: str) -> None:
        self.states.append(state)
        self.events.append(TextEvent("agent_state", {"state": state}))

    def notice(self, message: str) -> None:
        self.notices.append(message)
        self.events.append(TextEvent("notice", {"message": message}))

    def verdict(self, segment_id: str) -> SegmentVerdict:
        for v in self.verdicts:
            if v.segment_id == segment_id:
                return v
        raise KeyError(segment_id)


class MemoryTransport(Transport):
    """Source, clocked sink, recording text sink and text input, all in memory."""

    def __init__(
        self,
        clock: Clock,
        input_rate: int = 24000,
        *,
        output_rate: int = 24000,
        frame_ms: int = 20,
        on_frame: FrameCallback | None = None,
    ) -> None:
        self.clock = clock
        self.source = MemoryAudioSource(input_rate)
        self.sink = ClockedAudioSink(clock, output_rate, frame_ms, on_frame=on_frame)
        self.text = MemoryTextSink()
        self._typed: Channel[str] = Channel()

    @property
    def audio_in(self) -> MemoryAudioSource:
        return self.source

    @property
    def audio_out(self) -> ClockedAudioSink:
        return self.sink

    @property
    def text_out(self) -> MemoryTextSink:
        return self.text

    def text_in(self) -> AsyncIterator[str]:
        return aiter(self._typed)

    def send_text(self, text: str) -> None:
        """The caller types a message."""
        self._typed.send(text)

    def hang_up(self) -> None:
        self.source.close()
        self._typed.close()

    async def wait_closed(self) -> None:
        await self.source.wait_closed()

    async def aclose(self) -> None:
        self.hang_up()
        await self.sink.aclose()
