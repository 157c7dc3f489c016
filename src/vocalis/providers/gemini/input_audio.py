"""Caller audio kept on the client: the recent past (for re-seeding) and a manual turn.

Why keep audio at all: a re-seeded session (the heard-contract strategy) is opened while the
caller is usually still speaking — they just barged in. The audio of that utterance went to
the old session; the new one must hear it from its start, so the recent input is kept (a
bounded window of the arrays the transport handed over, no copies) and replayed on the new
connection. In manual-activity mode the current turn is held here until ``commit_audio``
sends it between ``activityStart`` and ``activityEnd`` (so an unfinished turn never
interrupts the model).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from vocalis.providers.gemini.wire import INPUT_RATE

_MS_PER_SAMPLE = 1000.0 / INPUT_RATE


class RecentInput:
    """The last ``window_ms`` of input audio on the session's input timeline (ms)."""

    def __init__(self, window_ms: float = 20000.0) -> None:
        self._window_ms = window_ms
        self._chunks: deque[tuple[float, np.ndarray]] = deque()
        self.end_ms = 0.0

    def append(self, samples: np.ndarray) -> None:
        self._chunks.append((self.end_ms, samples))
        self.end_ms += len(samples) * _MS_PER_SAMPLE
        horizon = self.end_ms - self._window_ms
        while (
            self._chunks and self._chunks[0][0] + len(self._chunks[0][1]) * _MS_PER_SAMPLE < horizon
        ):
            self._chunks.popleft()

    def since(self, start_ms: float) -> list[np.ndarray]:
        """The audio from ``start_ms`` on (whole chunks; the one holding ``start_ms`` included)."""
        return [
            samples
            for at_ms, samples in self._chunks
            if at_ms + len(samples) * _MS_PER_SAMPLE > start_ms
        ]

    def reset(self) -> None:
        """A new provider timeline (after a reconnect): positions restart at 0."""
        self._chunks.clear()
        self.end_ms = 0.0


class ManualTurn:
    """Audio of the caller turn not yet committed (manual activity), bounded."""

    def __init__(self, max_ms: float = 120000.0) -> None:
        self._max_samples = int(max_ms / _MS_PER_SAMPLE)
        self._chunks: list[np.ndarray] = []
        self._samples = 0
        self.dropped_samples = 0

    def append(self, samples: np.ndarray) -> None:
        if self._samples + len(samples) > self._max_samples:
            self.dropped_samples += len(samples)
            return
        self._chunks.append(samples)
        self._samples += len(samples)

    def take(self) -> list[np.ndarray]:
        chunks, self._chunks, self._samples = self._chunks, [], 0
        return chunks

    def clear(self) -> None:
        self._chunks.clear()
        self._samples = 0

    @property
    def empty(self) -> bool:
        return self._samples == 0
