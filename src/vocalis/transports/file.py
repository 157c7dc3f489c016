"""WAV in, stereo recording out: a call played from a file.

Why it exists: the quickest honest test of an agent is a caller WAV streamed at real time (so
server VAD and barge-in behave as on a call) and a recording of what was *heard*. The caller
audio goes to the left channel at the clock position it was sent; the agent's audio goes to the
right channel at the clock position each frame was actually played (from the
`ClockedAudioSink` frame callback) — so an interrupted message appears in the recording exactly
as long as `played_ms` says (S30), and both channels share one timeline (aligned to the frame).

Time: any `Clock`. With `MonotonicClock` the file streams at real time; under a `ManualClock`
a test drives the call as fast as it advances the clock.

After the WAV ends the source keeps sending silence (server VAD needs it to end the turn)
until the agent has been quiet for `idle_hangup_s`, at most `max_tail_s`, then hangs up.
"""

from __future__ import annotations

import json
import os
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np

from vocalis.audio.frame import AudioFrame, Int16Array
from vocalis.audio.resample import StreamResampler
from vocalis.audio.wav import read_wav, write_wav
from vocalis.transports.base import AudioSource, TextSink, Transport
from vocalis.transports.clocked import ClockedAudioSink
from vocalis.transports.memory import MemoryTextSink
from vocalis.utils.clock import Clock, MonotonicClock

__all__ = [
    "FileAudioSource",
    "FileTransport",
    "JsonlWriter",
    "StereoRecorder",
    "WavInputError",
    "load_input_wav",
    "write_history_json",
]


class WavInputError(ValueError):
    """The input file is not a usable caller WAV (the message says why, in one sentence)."""


def load_input_wav(path: str | os.PathLike[str]) -> AudioFrame:
    """Read a 16-bit PCM WAV as mono (stereo or more channels are mixed down)."""
    p = Path(path)
    if not p.is_file():
        raise WavInputError(f"input WAV not found: {p}")
    try:
        frame = read_wav(p)
    except (wave.Error, EOFError) as exc:
        raise WavInputError(f"{p} is not a readable WAV file ({exc})") from None
    except ValueError as exc:
        raise WavInputError(f"{p}: {exc}") from None
    if frame.num_samples == 0:
        raise WavInputError(f"{p} contains no audio")
    return frame.to_mono()


class StereoRecorder:
    """Two channels on one clock timeline: caller (left) and agent as played (right).

    Audio is placed at `round((t - origin) * rate)`; gaps are silence, overlaps (never produced
    by the transports) overwrite. Kept in memory as chunks (2 bytes/sample/channel: ~172 MB
    per hour of call at 24 kHz) and assembled once by `to_frame()`.
    """

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.origin: float | None = None
        self._chunks: tuple[list[tuple[int, Int16Array]], list[tuple[int, Int16Array]]] = ([], [])
        self._end = 0

    def start(self, origin: float) -> None:
        if self.origin is None:
            self.origin = origin

    def _add(self, channel: int, samples: Int16Array, t: float) -> None:
        if self.origin is None:
            self.origin = t
        pos = round((t - self.origin) * self.sample_rate)
        if pos < 0:  # audio from before the call started: keep only the part inside
            samples = samples[-pos:]
            pos = 0
        if samples.shape[0] == 0:
            return
        self._chunks[channel].append((pos, samples))
        self._end = max(self._end, pos + samples.shape[0])

    def add_caller(self, samples: Int16Array, t: float) -> None:
        self._add(0, samples, t)

    def add_agent(self, samples: Int16Array, t: float) -> None:
        self._add(1, samples, t)

    def extend_to(self, t: float) -> None:
        """Make the recording at least as long as the call so far (trailing silence)."""
        if self.origin is not None:
            self._end = max(self._end, round((t - self.origin) * self.sample_rate))

    @property
    def duration_ms(self) -> float:
        return self._end * 1000.0 / self.sample_rate

    def to_frame(self) -> AudioFrame:
        out = np.zeros((self._end, 2), dtype=np.int16)
        for channel, chunks in enumerate(self._chunks):
            for pos, samples in chunks:
                out[pos : pos + samples.shape[0], channel] = samples
        return AudioFrame(out, self.sample_rate, 2)

    def write(self, path: str | os.PathLike[str]) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write_wav(path, self.to_frame())


class FileAudioSource(AudioSource):
    """Streams a caller WAV in `frame_ms` frames paced on the clock, then silence, then hangs up."""

    def __init__(
        self,
        audio: AudioFrame,
        clock: Clock,
        *,
        frame_ms: int = 20,
        recorder: StereoRecorder | None = None,
        sink: ClockedAudioSink | None = None,
        idle_hangup_s: float = 3.0,
        max_tail_s: float = 30.0,
    ) -> None:
        if audio.channels != 1:
            raise ValueError("FileAudioSource needs mono audio (use load_input_wav)")
        self.audio = audio
        self.clock = clock
        self.frame_ms = frame_ms
        self.recorder = recorder
        self.sink = sink
        self.idle_hangup_s = idle_hangup_s
        self.max_tail_s = max_tail_s
        self.started_at: float | None = None
        self.input_ended_at: float | None = None
        self._hung_up = False
        self._consumed = False

    def hang_up(self) -> None:
        self._hung_up = True

    @property
    def hung_up(self) -> bool:
        return self._hung_up

    def _agent_quiet_since(self, now: float, quiet_since: float | None) -> float | None:
        sink = self.sink
        if sink is not None and (sink.playing or sink.pending_segments):
            return None
        return now if quiet_since is None else quiet_since

    async def frames(self, sample_rate: int) -> AsyncIterator[AudioFrame]:
        if self._consumed:
            raise RuntimeError("FileAudioSource supports a single consumer")
        self._consumed = True
        clock = self.clock
        src = self.audio
        step = src.sample_rate * self.frame_ms // 1000
        frame_s = self.frame_ms / 1000.0
        to_out = StreamResampler(src.sample_rate, sample_rate)
        rec = self.recorder
        to_rec = StreamResampler(src.sample_rate, rec.sample_rate) if rec is not None else None
        rec_pos = 0  # samples written to the recorder's caller channel
        start = self.started_at = clock.now()
        if rec is not None:
            rec.start(start)
        silence = np.zeros(step, dtype=np.int16)
        quiet_since: float | None = None
        k = 0
        try:
            while not self._hung_up:
                tick = start + k * frame_s
                await clock.sleep_until(tick)
                offset = k * step
                if offset < src.num_samples:
                    chunk = src.samples[offset : offset + step]
                else:
                    if self.input_ended_at is None:
                        self.input_ended_at = tick
                    quiet_since = self._agent_quiet_since(tick, quiet_since)
                    if tick - self.input_ended_at >= self.max_tail_s or (
                        quiet_since is not None and tick - quiet_since >= self.idle_hangup_s
                    ):
                        break
                    chunk = silence
                if rec is not None and to_rec is not None:
                    recorded = to_rec.push(chunk)
                    if recorded.shape[0]:
                        rec.add_caller(recorded, start + rec_pos / rec.sample_rate)
                        rec_pos += recorded.shape[0]
                out = to_out.push(chunk)
                k += 1
                if out.shape[0]:
                    yield AudioFrame(out, sample_rate)
        finally:
            self._hung_up = True
            if rec is not None and to_rec is not None:
                tail = to_rec.flush()
                if tail.shape[0]:
                    rec.add_caller(tail, start + rec_pos / rec.sample_rate)
                rec.extend_to(clock.now())


class FileTransport(Transport):
    """A call from a WAV file: paced caller audio in, clocked agent playback, stereo recording.

    `record_path` (optional) receives the stereo WAV on `aclose()`; `recording()` returns it
    at any time. `text_out` records transcripts and verdicts (a `MemoryTextSink` unless one
    is given).
    """

    def __init__(
        self,
        caller: AudioFrame | str | os.PathLike[str],
        *,
        clock: Clock | None = None,
        sample_rate: int = 24000,
        frame_ms: int = 20,
        record_path: str | os.PathLike[str] | None = None,
        text_sink: TextSink | None = None,
        idle_hangup_s: float = 3.0,
        max_tail_s: float = 30.0,
    ) -> None:
        audio = caller if isinstance(caller, AudioFrame) else load_input_wav(caller)
        if audio.channels != 1:
            audio = AudioFrame(
                audio.samples.astype(np.int32).mean(axis=1).round().astype(np.int16),
                audio.sample_rate,
            )
        self.clock: Clock = clock if clock is not None else MonotonicClock()
        self.recorder = StereoRecorder(sample_rate)
        self.record_path = None if record_path is None else Path(record_path)
        self.sink = ClockedAudioSink(
            self.clock, sample_rate, frame_ms, on_frame=self._on_agent_frame
        )
        self.source = FileAudioSource(
            audio,
            self.clock,
            frame_ms=frame_ms,
            recorder=self.recorder,
            sink=self.sink,
            idle_hangup_s=idle_hangup_s,
            max_tail_s=max_tail_s,
        )
        self._text: TextSink = text_sink if text_sink is not None else MemoryTextSink()

    def _on_agent_frame(self, samples: Int16Array, segment_id: str, t: float) -> None:
        self.recorder.add_agent(samples, t)

    @property
    def audio_in(self) -> FileAudioSource:
        return self.source

    @property
    def audio_out(self) -> ClockedAudioSink:
        return self.sink

    @property
    def text_out(self) -> TextSink:
        return self._text

    def hang_up(self) -> None:
        self.source.hang_up()

    async def wait_closed(self) -> None:
        # The source ends the call by itself (end of file + quiet tail); poll on the clock
        # rather than busy-waiting, at frame pace.
        while not self.source.hung_up:
            await self.clock.sleep(self.sink.frame_ms / 1000.0)

    def recording(self) -> AudioFrame:
        """Stereo: caller left, agent as played right, on the call's clock timeline."""
        return self.recorder.to_frame()

    async def aclose(self) -> None:
        self.source.hang_up()
        try:
            await self.sink.aclose()
        finally:
            self.recorder.extend_to(self.clock.now())
            if self.record_path is not None:
                self.recorder.write(self.record_path)


def write_history_json(path: str | os.PathLike[str], history: Any) -> None:
    """Write the history (a JSON-able dict/list from the runtime) as indented UTF-8 JSON."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(history, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


class JsonlWriter:
    """Append one JSON object per line as events happen (flushed, so a crash keeps the log)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] | None = p.open("w", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        if self._fh is None:
            raise RuntimeError("JsonlWriter is closed")
        self._fh.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
