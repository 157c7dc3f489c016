"""Latency bookkeeping: when did the caller stop speaking, in the session clock?

The provider reports the end of the caller's speech as a position in the input audio stream
(`audio_end_ms`), and its `speech_stopped` event arrives only after its silence window
(~500 ms later). Timing from event *arrival* would understate voice-to-voice latency by that
window (P35: "clock starts at the wrong moment"). `InputTimeline` remembers when each input
frame was captured, so a stream position maps back to the clock time the caller actually
stopped.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left

import numpy as np

# Samples at or below this absolute value count as silence when looking for the first
# audible agent sample (int16 full scale is 32767; -50 dBFS ≈ 100).
SILENCE_PEAK = 100


class InputTimeline:
    """Maps input-stream milliseconds to the clock time that audio was captured.

    The last `keep_frames` frames live in two arrays used as one ring: a deque of
    (float, float) tuples cost ~110 bytes per frame, ~330 KB per call once full, allocated
    and freed 50 times a second (#14); this costs 16 bytes per frame. The default keeps 20 s
    of 20 ms frames (16 KB per call; a minute cost 48 KB, the largest single object of a
    speaking session, #17): the only positions looked up are where the caller's speech
    stopped, reported a silence window (0.2-2 s) plus the provider's delay later. An older
    position is placed from the oldest kept frame.

    The arrays grow with the frames until the ring is full rather than being allocated at
    full size up front: a connected session whose caller has sent nothing (or sent less
    than the ring holds) keeps only what it has been sent (#17: the 16 KB were the largest
    item of an idle session). Growth is the arrays' own amortised append, done at most
    `keep_frames` times per call; after that a frame overwrites its slot.
    """

    def __init__(self, keep_frames: int = 1000) -> None:
        if keep_frames < 1:
            raise ValueError("keep_frames must be at least 1")
        # Stream position at the end of each frame (ms) and the clock time it arrived; frame
        # number k of the stream lives in slot k % keep_frames. Slots exist once written.
        self._ends = array("d")
        self._ats = array("d")
        self._size = keep_frames
        self._appended = 0  # frames of this stream so far; the ring keeps the last `_size`
        self.stream_ms = 0.0

    def reset(self) -> None:
        """A new provider input stream starts at 0 ms (after a reconnect)."""
        self._appended = 0
        self.stream_ms = 0.0

    def append(self, duration_ms: float, captured_at: float) -> None:
        self.stream_ms += duration_ms
        i = self._appended % self._size
        self._appended += 1
        if i < len(self._ends):  # the slot exists: overwrite it (also after a reset)
            self._ends[i] = self.stream_ms
            self._ats[i] = captured_at
            return
        # Slot numbers rise one by one from 0 after a reset, so a missing slot is the next one.
        self._ends.append(self.stream_ms)
        self._ats.append(captured_at)
        if i + 1 == self._size:  # full: drop the append's spare capacity, once per call
            self._ends = self._ends[:]
            self._ats = self._ats[:]

    def clock_time_of(self, stream_ms: float) -> float | None:
        """Clock time at which input position `stream_ms` was spoken (None if unknown)."""
        appended, size, ends = self._appended, self._size, self._ends
        if not appended:
            return None
        kept = range(max(appended - size, 0), appended)  # frame numbers still in the ring
        # Frame ends only grow: the first kept frame ending at or after `stream_ms`.
        found = bisect_left(kept, stream_ms, key=lambda k: ends[k % size])
        if found < len(kept):
            # The frame holding that sample arrived at `at`; its end was "now" then.
            i = kept[found] % size
            return self._ats[i] - (ends[i] - stream_ms) / 1000.0
        i = (appended - 1) % size
        return self._ats[i] + (stream_ms - ends[i]) / 1000.0


def first_audible_offset(samples: np.ndarray, threshold: int = SILENCE_PEAK) -> int | None:
    """Index of the first sample louder than `threshold`, or None if the chunk is silent."""
    if samples.size == 0:
        return None
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > threshold)
    return int(loud[0]) if loud.size else None
