"""Input audio buffer and server-side turn detection (``server_vad`` / ``semantic_vad``).

Sans-I/O glue between ``input_audio_buffer.append`` and :class:`vocalis.audio.vad.EnergyVAD`.
All positions are on the *session-cumulative input timeline*: milliseconds of all audio the
client appended during the session (what the real API reports as ``audio_start_ms`` /
``audio_end_ms``), independent of commits, clears and wall time.

``semantic_vad`` is emulated with the same energy detector; its ``eagerness`` maps to the
silence needed to end a turn (low 1000 ms, medium/auto 500 ms, high 250 ms).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from vocalis.audio.g711 import alaw_decode, ulaw_decode
from vocalis.audio.vad import EnergyVAD, threshold_to_db
from vocalis.sim.session_config import TurnDetection, sample_rate

_EAGERNESS_SILENCE_MS = {"low": 1000, "medium": 500, "auto": 500, "high": 250}
MIN_SPEECH_MS = 100
# Outside speech the buffer keeps the prefix padding plus this much: a speech start is
# confirmed only after MIN_SPEECH_MS of voice, so its padded start can lie a little further
# back than the prefix alone (a whole second is ample for any append size's detection lag).
_ONSET_LOOKBACK_MS = 1000.0


def decode_input(data: bytes, fmt_type: str) -> np.ndarray[Any, np.dtype[np.int16]]:
    """Input audio bytes -> int16 samples at the format's rate (24 kHz PCM, 8 kHz G.711)."""
    if fmt_type == "audio/pcmu":
        return ulaw_decode(data)
    if fmt_type == "audio/pcma":
        return alaw_decode(data)
    usable = len(data) - len(data) % 2
    return np.frombuffer(data, dtype="<i2", count=usable // 2).astype(np.int16, copy=False)


@dataclass(frozen=True, slots=True)
class TurnEvent:
    """A VAD boundary at ``at_ms`` of the session-cumulative input timeline."""

    kind: Literal["speech_started", "speech_stopped"]
    at_ms: float


class InputBuffer:
    """The uncommitted input audio, and the session-cumulative input clock."""

    def __init__(self, bytes_per_ms: float) -> None:
        self.bytes_per_ms = bytes_per_ms
        self.data = bytearray()
        self.start_ms = 0.0  # session timeline position of data[0]
        self.total_ms = 0.0  # all audio ever appended

    @property
    def buffered_ms(self) -> float:
        return len(self.data) / self.bytes_per_ms

    def append(self, audio: bytes) -> None:
        if not self.data:
            self.start_ms = self.total_ms
        self.data += audio
        self.total_ms += len(audio) / self.bytes_per_ms

    def drop_before(self, at_ms: float) -> None:
        """Discard audio before ``at_ms`` (VAD keeps only the padded speech of a turn)."""
        cut = int((at_ms - self.start_ms) * self.bytes_per_ms)
        cut -= cut % (2 if self.bytes_per_ms == 48.0 else 1)
        if cut > 0:
            del self.data[:cut]
            self.start_ms = at_ms
        elif not self.data:
            self.start_ms = self.total_ms

    def take(self) -> bytes:
        """Empty the buffer and return its audio (for a commit)."""
        audio = bytes(self.data)
        self.data.clear()
        self.start_ms = self.total_ms
        return audio

    def clear(self) -> None:
        self.data.clear()
        self.start_ms = self.total_ms

    def set_format(self, bytes_per_ms: float) -> None:
        if bytes_per_ms != self.bytes_per_ms:
            self.data.clear()
            self.bytes_per_ms = bytes_per_ms
            self.start_ms = self.total_ms


class TurnDetector:
    """Energy VAD on the appended audio, reporting session-timeline events."""

    def __init__(self, config: TurnDetection, fmt_type: str, origin_ms: float) -> None:
        self.fmt_type = fmt_type
        self.origin_ms = origin_ms
        self._vad = EnergyVAD(sample_rate(fmt_type), min_speech_ms=MIN_SPEECH_MS)
        self.config = config
        self.configure(config)

    def configure(self, config: TurnDetection) -> None:
        self.config = config
        if config.kind == "server_vad":
            self._vad.configure(
                threshold_db=threshold_to_db(config.threshold),
                min_silence_ms=float(config.silence_duration_ms),
                prefix_padding_ms=float(config.prefix_padding_ms),
            )
        else:
            self._vad.configure(
                threshold_db=threshold_to_db(0.5),
                min_silence_ms=float(_EAGERNESS_SILENCE_MS[config.eagerness]),
                prefix_padding_ms=300.0,
            )

    @property
    def create_response(self) -> bool:
        return self.config.create_response

    @property
    def interrupt_response(self) -> bool:
        return self.config.interrupt_response

    @property
    def in_speech(self) -> bool:
        return self._vad.in_speech

    @property
    def idle_keep_ms(self) -> float:
        """How much uncommitted audio to keep while nobody speaks.

        The real API keeps only the padded speech of a turn; without this bound a session on
        server VAD that hears no speech keeps every appended byte (~170 KB per minute).
        """
        return self._vad.prefix_padding_ms + _ONSET_LOOKBACK_MS

    def feed(self, audio: bytes) -> list[TurnEvent]:
        samples = decode_input(audio, self.fmt_type)
        return [
            TurnEvent(event.kind, self.origin_ms + event.at_ms)
            for event in self._vad.process(samples)
        ]
