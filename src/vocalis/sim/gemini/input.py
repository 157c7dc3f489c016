"""The caller's side of a Gemini session: realtime audio, server VAD and manual activity.

Sans-I/O: audio in (any ``audio/pcm;rate=N``, resampled to the 16 kHz the model listens at),
turn boundaries out. With automatic activity detection an energy VAD on the audio decides
(positions are on the audio timeline, never wall time, so the same audio always gives the
same turns); with it disabled, ``activityStart`` / ``activityEnd`` from the client do, and
audio outside an activity is ignored, as the service documents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from vocalis.audio.resample import resample
from vocalis.audio.vad import EnergyVAD
from vocalis.sim.gemini.setup import SetupConfig
from vocalis.sim.gemini.wire import WireError

MODEL_INPUT_RATE = 16000
MIN_SPEECH_MS = 100.0


@dataclass(frozen=True, slots=True)
class Boundary:
    """A caller turn boundary: ``start`` (barge-in point) or ``end`` (the turn is complete)."""

    kind: Literal["start", "end"]
    # Input-timeline position in ms (audio received so far), and for ``end`` the turn's length.
    at_ms: float
    turn_ms: float = 0.0


class InputTrack:
    """Input audio accounting and turn detection for one session."""

    def __init__(self, setup: SetupConfig) -> None:
        self._automatic = setup.automatic_vad
        self._vad = EnergyVAD(MODEL_INPUT_RATE, min_speech_ms=MIN_SPEECH_MS)
        self._vad.configure(
            threshold_db=setup.vad_threshold_db,
            min_silence_ms=setup.silence_ms,
            prefix_padding_ms=setup.prefix_padding_ms,
        )
        self.received_ms = 0.0  # all input audio, 16 kHz timeline
        self._turn_start_ms: float | None = None
        self._in_activity = False
        self.ignored_ms = 0.0  # manual mode: audio sent outside an activity

    @property
    def in_turn(self) -> bool:
        return self._turn_start_ms is not None

    def audio(self, pcm: bytes, rate: int) -> list[Boundary]:
        usable = len(pcm) - len(pcm) % 2
        samples = np.frombuffer(pcm, dtype="<i2", count=usable // 2).astype(np.int16, copy=False)
        if rate != MODEL_INPUT_RATE and len(samples):
            samples = resample(samples, rate, MODEL_INPUT_RATE)
        start_ms = self.received_ms
        self.received_ms += len(samples) * 1000.0 / MODEL_INPUT_RATE
        if not self._automatic:
            if not self._in_activity:
                self.ignored_ms += self.received_ms - start_ms
            return []
        out: list[Boundary] = []
        for event in self._vad.process(samples):
            if event.kind == "speech_started":
                self._turn_start_ms = event.at_ms
                out.append(Boundary("start", event.at_ms))
            elif self._turn_start_ms is not None:
                out.append(Boundary("end", event.at_ms, event.at_ms - self._turn_start_ms))
                self._turn_start_ms = None
        return out

    def activity_start(self) -> list[Boundary]:
        if self._automatic:
            raise WireError(
                "Explicit activity control is not supported when automatic activity "
                "detection is enabled."
            )
        if self._in_activity:
            return []
        self._in_activity = True
        self._turn_start_ms = self.received_ms
        return [Boundary("start", self.received_ms)]

    def activity_end(self) -> list[Boundary]:
        if self._automatic:
            raise WireError(
                "Explicit activity control is not supported when automatic activity "
                "detection is enabled."
            )
        if not self._in_activity or self._turn_start_ms is None:
            return []
        self._in_activity = False
        start, self._turn_start_ms = self._turn_start_ms, None
        return [Boundary("end", self.received_ms, self.received_ms - start)]

    def stream_end(self) -> list[Boundary]:
        """``audioStreamEnd``: the mic closed; a turn in progress ends now (automatic VAD)."""
        if not self._automatic or self._turn_start_ms is None:
            return []
        self._vad.flush()
        start, self._turn_start_ms = self._turn_start_ms, None
        return [Boundary("end", self.received_ms, self.received_ms - start)]
