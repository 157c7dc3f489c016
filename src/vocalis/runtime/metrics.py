"""Latency bookkeeping: when did the caller stop speaking, in the session clock?

The provider reports the end of the caller's speech as a position in the input audio stream
(`audio_end_ms`), and its `speech_stopped` event arrives only after its silence window
(~500 ms later). Timing from event *arrival* would understate voice-to-voice latency by that
window (P35: "clock starts at the wrong moment"). `InputTimeline` remembers when each input
frame was captured, so a stream position maps back to the clock time the caller actually
stopped.
"""

from __future__ import annotations

from collections import deque

import numpy as np

# Samples at or below this absolute value count as silence when looking for the first
# audible agent sample (int16 full scale is 32767; -50 dBFS ≈ 100).
SILENCE_PEAK = 100


class InputTimeline:
    """Maps input-stream milliseconds to the clock time that audio was captured."""

    def __init__(self, keep_frames: int = 3000) -> None:
        # (stream position at the end of the frame in ms, clock time the frame arrived)
        self._frames: deque[tuple[float, float]] = deque(maxlen=keep_frames)
        self.stream_ms = 0.0

    def reset(self) -> None:
        """A new provider input stream starts at 0 ms (after a reconnect)."""
        self._frames.clear()
        self.stream_ms = 0.0

    def append(self, duration_ms: float, captured_at: float) -> None:
        self.stream_ms += duration_ms
        self._frames.append((self.stream_ms, captured_at))

    def clock_time_of(self, stream_ms: float) -> float | None:
        """Clock time at which input position `stream_ms` was spoken (None if unknown)."""
        frames = self._frames
        if not frames:
            return None
        for end_ms, at in frames:
            if end_ms >= stream_ms:
                # The frame holding that sample arrived at `at`; its end was "now" then.
                return at - (end_ms - stream_ms) / 1000.0
        end_ms, at = frames[-1]
        return at + (stream_ms - end_ms) / 1000.0


def first_audible_offset(samples: np.ndarray, threshold: int = SILENCE_PEAK) -> int | None:
    """Index of the first sample louder than `threshold`, or None if the chunk is silent."""
    if samples.size == 0:
        return None
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > threshold)
    return int(loud[0]) if loud.size else None
