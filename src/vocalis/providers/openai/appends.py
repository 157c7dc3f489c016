"""Caller audio batched into fewer ``input_audio_buffer.append`` events.

Why: a phone line delivers a 20 ms frame 50 times a second. Sending each as its own WebSocket
message costs a task wake-up, a frame header and a ``send`` syscall per frame on our side, and
a JSON parse per frame on the provider's. Two frames per append halve all of it; the price is
that the provider's VAD sees the audio up to one chunk minus one frame later (20 ms for the
40 ms default — `bench/input_chunk.py` measures the turn-detection latency per chunk size).

Order is kept: pending audio is flushed before any other client event on the socket (a
``commit`` or a ``response.create`` never overtakes audio that came before it). Pending audio
belongs to its socket and is dropped with it, like everything else queued for a dead socket.

Sans-I/O: the connection decides when to send; this only decides what.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from vocalis.audio.frame import Int16Array

__all__ = ["InputAppends"]

# The hot path builds this event by concatenation (no JSON encoder per frame).
_APPEND_PREFIX = '{"type":"input_audio_buffer.append","audio":"'
_APPEND_SUFFIX = '"}'


class InputAppends:
    """Collects caller samples until ``chunk_samples`` are pending, then yields one append."""

    __slots__ = ("_chunk", "_encode", "_pending", "_pending_samples")

    def __init__(self, encode_b64: Callable[[Int16Array], str], chunk_samples: int) -> None:
        if chunk_samples < 1:
            raise ValueError("chunk_samples must be at least 1")
        self._encode = encode_b64
        self._chunk = chunk_samples
        self._pending: list[Int16Array] = []
        self._pending_samples = 0

    @property
    def pending_samples(self) -> int:
        return self._pending_samples

    def add(self, samples: Int16Array) -> str | None:
        """Queue ``samples``; the append event once a chunk is complete, else None."""
        self._pending.append(samples)
        pending = self._pending_samples + len(samples)
        if pending < self._chunk:
            self._pending_samples = pending
            return None
        return self.flush()

    def flush(self) -> str | None:
        """The append event of everything pending (None when nothing is)."""
        pending = self._pending
        if not pending:
            return None
        audio = pending[0] if len(pending) == 1 else np.concatenate(pending)
        self._pending = []
        self._pending_samples = 0
        return _APPEND_PREFIX + self._encode(audio) + _APPEND_SUFFIX
