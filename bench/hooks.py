"""Benchmark-only instrumentation of a `VocalisAgent` (nothing here ships in vocalis).

What the latency and truncation numbers need, and where it is taken:

* **raw receive time** of a server event: a shim replaces `decode_server_frame` *inside*
  `vocalis.providers.openai.lifecycle` (the session's socket half) and stamps `perf_counter()`
  just before each decode —
  i.e. when the WebSocket handed over the message, before any vocalis code touched it. The
  provider's receive loop calls `core.receive(event)` right after the decode with no `await`
  between, so a per-session wrapper of `core.receive` reads that stamp and knows which
  session the event belongs to.
* **first frame handed to the sink**: `InstrumentedSink.begin_segment` wraps each segment's
  `push` and stamps the first call.
* **sink cleared**: `InstrumentedSink.clear` stamps the call and snapshots, per pending
  segment, the audio actually played so far (from the sink's frame callback, which sums the
  samples that went out — independent of the sink's own `played_ms` bookkeeping) and the audio
  received so far (the naive clients' truncation point).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.common import RATE
from vocalis.transports.clocked import ClockedAudioSink, ClockedSegment
from vocalis.utils.clock import Clock

_BYTES_PER_MS = RATE * 2 / 1000.0


class _RawStamp:
    """Wraps the provider module's frame decoder: stamps the moment each message is parsed."""

    def __init__(self, decode: Callable[[str | bytes], Any]) -> None:
        self.last = 0.0
        self._decode = decode

    def decode(self, raw: str | bytes) -> Any:
        self.last = time.perf_counter()
        return self._decode(raw)


_STAMP: _RawStamp | None = None


def install_raw_stamp() -> _RawStamp:
    """Idempotently put the stamping shim into the provider module (bench processes only)."""
    global _STAMP
    if _STAMP is None:
        from vocalis.providers.openai import frames, lifecycle

        if getattr(lifecycle, "decode_server_frame", None) is not frames.decode_server_frame:
            raise RuntimeError(
                "bench hooks: vocalis.providers.openai.lifecycle no longer decodes frames "
                "with frames.decode_server_frame"
            )
        _STAMP = _RawStamp(frames.decode_server_frame)
        lifecycle.decode_server_frame = _STAMP.decode  # type: ignore[attr-defined]
    return _STAMP


def _b64_bytes(data: str) -> int:
    n = len(data)
    return n * 3 // 4 - (data.endswith("=") + data.endswith("=="))


@dataclass
class ClearSnapshot:
    at: float
    speech_started_at: float | None
    # segment id -> (played ms by frame count, received ms, first delta time)
    segments: dict[str, tuple[float, float, float | None]]


@dataclass
class Recorder:
    """Per-session timestamps (perf_counter seconds)."""

    first_delta: dict[str, float] = field(default_factory=dict)
    received_ms: dict[str, float] = field(default_factory=dict)
    first_push: dict[str, float] = field(default_factory=dict)
    played_samples: dict[str, int] = field(default_factory=dict)
    speech_started: list[float] = field(default_factory=list)
    clears: list[ClearSnapshot] = field(default_factory=list)
    # Where underruns happen: ms of the starving segment already played at that tick.
    underrun_at_ms: list[float] = field(default_factory=list)
    active: bool = True

    def wrap_core(self, core: Any, stamp: _RawStamp) -> None:
        """Wrap one provider session's protocol core (instance attribute, this session only)."""
        original = core.receive
        first_delta = self.first_delta
        received = self.received_ms

        def receive(event: Any) -> Any:
            if isinstance(event, dict):
                kind = event.get("type")
                if kind == "response.output_audio.delta":
                    item = event.get("item_id")
                    delta = event.get("delta")
                    if isinstance(item, str) and isinstance(delta, str):
                        if item not in first_delta:
                            first_delta[item] = stamp.last
                        received[item] = received.get(item, 0.0) + _b64_bytes(delta) / _BYTES_PER_MS
                elif kind == "input_audio_buffer.speech_started":
                    self.speech_started.append(stamp.last)
            return original(event)

        core.receive = receive

    def latency_push_ms(self) -> list[float]:
        return [
            (self.first_push[item] - t) * 1000.0
            for item, t in self.first_delta.items()
            if item in self.first_push
        ]

    def latency_clear_ms(self) -> list[float]:
        return [
            (snap.at - snap.speech_started_at) * 1000.0
            for snap in self.clears
            if snap.speech_started_at is not None and snap.segments
        ]


class InstrumentedSink(ClockedAudioSink):
    """`ClockedAudioSink` that stamps first pushes and clears for a `Recorder`."""

    def __init__(
        self,
        clock: Clock,
        recorder: Recorder,
        *,
        device: Callable[[np.ndarray, str, float], None] | None = None,
        **kwargs: Any,
    ) -> None:
        """``device`` also gets every frame (the simulated device's gap counter): an
        instrumented run counts playback gaps like any other."""
        self.recorder = recorder
        played = recorder.played_samples

        def on_frame(piece: np.ndarray, segment_id: str, at: float) -> None:
            played[segment_id] = played.get(segment_id, 0) + piece.shape[0]
            if device is not None:
                device(piece, segment_id, at)

        super().__init__(clock, RATE, 20, on_frame=on_frame, **kwargs)

    def begin_segment(self, segment_id: str, sample_rate: int) -> ClockedSegment:
        seg = super().begin_segment(segment_id, sample_rate)
        first_push = self.recorder.first_push
        push = seg.push

        def stamped_push(samples: np.ndarray) -> None:
            if segment_id not in first_push:
                first_push[segment_id] = time.perf_counter()
            push(samples)

        seg.push = stamped_push  # type: ignore[method-assign]
        return seg

    def _play_frame(self, tick: float) -> bool:
        before = self.underruns
        played = super()._play_frame(tick)
        if self.underruns != before:
            for seg in self._segments:
                if seg._played and not (seg.ended and seg._queued == 0):
                    self.recorder.underrun_at_ms.append(seg.played_ms)
                    break
        return played

    def clear(self) -> None:
        at = time.perf_counter()
        rec = self.recorder
        pending = list(self._segments)
        super().clear()  # plays the frames due by now first, then cuts
        if rec.active:
            started = [t for t in rec.speech_started if t <= at]
            segments = {
                seg.id: (
                    rec.played_samples.get(seg.id, 0) * 1000.0 / RATE,
                    rec.received_ms.get(seg.id, 0.0),
                    rec.first_delta.get(seg.id),
                )
                for seg in pending
            }
            rec.clears.append(ClearSnapshot(at, started[-1] if started else None, segments))
