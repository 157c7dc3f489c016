"""Caller audio batched into fewer ``input_audio_buffer.append`` events.

Why: a phone line delivers a 20 ms frame 50 times a second. Sending each as its own WebSocket
message costs a task wake-up, a frame header and a ``send`` syscall per frame on our side, and
a JSON parse per frame on the provider's. Two frames per append halve all of it; the price is
that the provider's VAD sees the audio up to one chunk minus one frame later (20 ms for the
40 ms default — `bench/input_chunk.py` measures the turn-detection latency per chunk size).

Quiet audio goes in larger appends (``quiet_chunk_samples``, 200 ms by default): while the
provider's VAD is *not* inside a caller turn (no ``speech_started`` pending its
``speech_stopped``), a frame whose every sample is within ±``QUIET_PEAK`` (−50 dBFS) carries
nothing a VAD decides on — holding it longer delays no turn start (the first frame with sound
completes the chunk and everything goes at once) and no turn end (inside a turn every frame
uses the normal chunk). A caller is silent most of a call (while the agent speaks), so this
removes most of the per-append cost then. A line whose noise floor is above −50 dBFS simply
keeps the normal chunk.

Order is kept: pending audio is flushed before any other client event on the socket (a
``commit`` or a ``response.create`` never overtakes audio that came before it). Pending audio
belongs to its socket and is dropped with it, like everything else queued for a dead socket.

Sans-I/O: the connection decides when to send; this only decides what.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

from vocalis.audio.frame import Int16Array

__all__ = ["QUIET_PEAK", "SOUND_HANGOVER_QUIET_CHUNKS", "InputAppends", "is_quiet", "is_zero"]

# The hot path builds this event by concatenation (no JSON encoder per frame).
_APPEND_PREFIX = '{"type":"input_audio_buffer.append","audio":"'
_APPEND_SUFFIX = '"}'

# A frame whose samples all lie within ±QUIET_PEAK (−50 dBFS; int16 full scale is 32767) is
# quiet: far below any speech a VAD starts a turn on, above digital and most line silence.
QUIET_PEAK = 100
# After a frame with sound, this many quiet chunks' worth of audio (1 s at 200 ms) goes in
# normal chunks without a level check: a pause between words is not held longer either.
SOUND_HANGOVER_QUIET_CHUNKS = 5


@lru_cache(maxsize=4)
def _zeros(nbytes: int) -> bytes:
    """Digital silence of ``nbytes`` (a line's frames come in one or two sizes)."""
    return bytes(nbytes)


def is_zero(samples: Int16Array) -> bool:
    """Digital silence: every sample is 0 (the empty frame too).

    Why bytes: a silent line (a muted mic, a quiet PSTN line) sends digital zero, and
    comparing a frame's bytes with zero bytes of its size (~0.3 µs on a 20 ms frame) costs a
    fraction of one numpy reduction (a ufunc dispatch, ~1.3 µs). All bytes zero means every
    sample is 0.
    """
    raw = samples.tobytes()
    return raw == _zeros(len(raw))


@lru_cache(maxsize=8)
def _silence_append(encode_b64: Callable[[Int16Array], str], samples: int) -> str:
    """The append event of ``samples`` of digital silence: the same text every time, shared
    by every session with that encoder (one per wire format)."""
    return _APPEND_PREFIX + encode_b64(np.zeros(samples, np.int16)) + _APPEND_SUFFIX


def is_quiet(samples: Int16Array) -> bool:
    """Every sample within ±`QUIET_PEAK`.

    Digital zero is recognised by its bytes first (`is_zero`); any other frame takes two
    reductions (no temporary array: `np.abs` would allocate and overflow at -32768).
    """
    if is_zero(samples):
        return True
    return bool(
        np.maximum.reduce(samples) <= QUIET_PEAK and np.minimum.reduce(samples) >= -QUIET_PEAK
    )


class InputAppends:
    """Collects caller samples until ``chunk_samples`` are pending (``quiet_chunk_samples``
    while the audio is quiet outside a caller turn), then yields one append."""

    __slots__ = (
        "_chunk",
        "_encode",
        "_pending",
        "_pending_samples",
        "_quiet_chunk",
        "_unchecked",
        "in_turn",
    )

    def __init__(
        self,
        encode_b64: Callable[[Int16Array], str],
        chunk_samples: int,
        quiet_chunk_samples: int = 0,
    ) -> None:
        if chunk_samples < 1:
            raise ValueError("chunk_samples must be at least 1")
        self._encode = encode_b64
        self._chunk = chunk_samples
        # At most the normal chunk disables quiet batching (every frame uses `chunk_samples`).
        self._quiet_chunk = max(quiet_chunk_samples, chunk_samples)
        self._pending: list[Int16Array] = []
        self._pending_samples = 0
        # Samples still to go in normal chunks without a level check after a frame with sound
        # (SOUND_HANGOVER_QUIET_CHUNKS of them): speech is sound most of the time, and a
        # level check per chunk would cost more than quiet batching saves while it lasts.
        self._unchecked = 0
        # Whether the provider's VAD is inside a caller turn (its `speech_started` came, its
        # `speech_stopped` not yet): then no audio is held beyond the normal chunk. Set by
        # the session from the provider's events.
        self.in_turn = False

    @property
    def pending_samples(self) -> int:
        return self._pending_samples

    @property
    def holding_quiet(self) -> bool:
        """Audio beyond a normal chunk is pending (held as quiet): its hold is the longer one."""
        return self._pending_samples >= self._chunk

    def add(self, samples: Int16Array) -> str | None:
        """Queue ``samples``; the append event once a chunk is complete, else None."""
        self._pending.append(samples)
        pending = self._pending_samples + len(samples)
        if pending < self._chunk or (
            pending < self._quiet_chunk and not self.in_turn and self._all_quiet(samples)
        ):
            self._pending_samples = pending
            return None
        return self.flush()

    def _all_quiet(self, samples: Int16Array) -> bool:
        """Is everything pending quiet? Each frame is looked at once: the frames of a normal
        partial chunk when it first would go out, every later one as it comes — unless a
        frame with sound came less than the hangover ago (then: no, without looking)."""
        if self._unchecked > 0:
            self._unchecked -= self._pending_samples + len(samples)
            return False
        if self._pending_samples >= self._chunk:  # already held as quiet: all checked
            quiet = is_quiet(samples)
        else:
            quiet = all(is_quiet(frame) for frame in self._pending)
        if not quiet:
            self._unchecked = SOUND_HANGOVER_QUIET_CHUNKS * self._quiet_chunk
        return quiet

    def flush(self) -> str | None:
        """The append event of everything pending (None when nothing is)."""
        pending = self._pending
        if not pending:
            return None
        held_as_quiet = self.holding_quiet
        self._pending = []
        self._pending_samples = 0
        if held_as_quiet and all(map(is_zero, pending)):
            # A silent line's quiet batch: the same event every time, built once. Saves the
            # concatenation, the encoding and two copies of the event text per append
            # (about 2% of the agent's CPU on a silent line). Only a batch held as quiet is
            # looked at: a normal chunk (speech, a noisy line) pays nothing for it. Only
            # batches of a usual size are kept: a source pushing huge frames of silence must
            # not leave megabytes of event text in the shared cache.
            samples = sum(map(len, pending))
            if samples <= 2 * self._quiet_chunk:
                return _silence_append(self._encode, samples)
        audio = pending[0] if len(pending) == 1 else np.concatenate(pending)
        return _APPEND_PREFIX + self._encode(audio) + _APPEND_SUFFIX
