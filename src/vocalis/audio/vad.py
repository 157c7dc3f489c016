"""Energy-based voice activity detection on the audio timeline.

Why it exists: the simulated realtime server needs ``server_vad`` (``speech_started`` /
``speech_stopped`` with ``audio_start_ms`` / ``audio_end_ms``), and transports/tests need a
cheap, deterministic way to tell speech from silence. Events are stamped in milliseconds of
*audio fed so far* (never wall-clock time), so the same audio always gives the same events,
whatever the chunk sizes.

Algorithm: the signal is cut into 10 ms windows (carrying partial windows across calls); each
window's energy in dBFS (``10*log10(mean(x²)/32768²)``, so a full-scale sine is -3 dBFS) is
computed vectorised with numpy. A window is *voiced* when its energy exceeds ``threshold_db``.

- ``speech_started`` fires once ``min_speech_ms`` of consecutive voiced windows have been
  seen. Its ``at_ms`` follows OpenAI's ``audio_start_ms``: the start of the first voiced window
  **minus** ``prefix_padding_ms`` (clamped to 0 and to the previous ``speech_stopped``), i.e.
  where the audio committed for the turn begins. ``onset_ms`` keeps the unpadded onset.
- ``speech_stopped`` fires once ``min_silence_ms`` of consecutive unvoiced windows follow
  speech. Its ``at_ms`` follows OpenAI's ``audio_end_ms``: the end of the last voiced window
  **plus** ``min_silence_ms`` (= the position at which the decision was made); ``onset_ms``
  is the end of the last voiced window.

``detected_ms`` is the audio position at which the event was decided (the end of the window
that completed ``min_speech_ms`` / ``min_silence_ms``); a simulator emits the event when its
input clock reaches that point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from vocalis.audio.frame import Int16Array

__all__ = ["EnergyVAD", "VADEvent", "VADEventKind", "db_to_threshold", "threshold_to_db"]

VADEventKind = Literal["speech_started", "speech_stopped"]

_WINDOW_MS = 10
_DB_AT_ZERO = -70.0
_DB_SPAN = 60.0
_FULL_SCALE_SQ = 32768.0 * 32768.0
_ENERGY_FLOOR = 1e-10  # -100 dBFS, avoids log(0) on digital silence


def threshold_to_db(threshold: float) -> float:
    """Map an OpenAI-style ``server_vad`` ``threshold`` (0..1) onto a dBFS energy threshold.

    Linear in dB: ``0.0 -> -70 dBFS`` (very sensitive, picks up quiet breath/noise),
    ``0.5 -> -40 dBFS`` (the default; normal speech at -30..-15 dBFS passes, room noise
    at -60 dBFS does not), ``1.0 -> -10 dBFS`` (only very loud audio). Higher threshold means
    louder audio is required, as in the OpenAI API.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"VAD threshold must be within 0..1, got {threshold}")
    return _DB_AT_ZERO + _DB_SPAN * threshold


def db_to_threshold(threshold_db: float) -> float:
    """Inverse of :func:`threshold_to_db`, clamped to 0..1."""
    return min(1.0, max(0.0, (threshold_db - _DB_AT_ZERO) / _DB_SPAN))


@dataclass(frozen=True, slots=True)
class VADEvent:
    """A speech boundary on the audio timeline (ms of audio fed since creation/reset).

    ``at_ms`` uses OpenAI semantics (padded, see module docs); ``onset_ms`` is the unpadded
    boundary; ``detected_ms`` is when the detector could decide.
    """

    kind: VADEventKind
    at_ms: float
    onset_ms: float = 0.0
    detected_ms: float = 0.0


class EnergyVAD:
    """Incremental energy VAD for mono int16 audio; feed chunks of any size to :meth:`process`."""

    __slots__ = (
        "_cand_start",
        "_cand_windows",
        "_in_speech",
        "_last_stop_ms",
        "_last_voiced_end",
        "_min_silence_windows",
        "_min_speech_windows",
        "_ms_per_sample",
        "_rem",
        "_silence_windows",
        "_threshold_energy",
        "_window",
        "_windows_done",
        "min_silence_ms",
        "min_speech_ms",
        "prefix_padding_ms",
        "sample_rate",
        "threshold_db",
    )

    sample_rate: int
    threshold_db: float
    min_speech_ms: float
    min_silence_ms: float
    prefix_padding_ms: float
    _window: int
    _ms_per_sample: float
    _min_speech_windows: int
    _min_silence_windows: int
    _threshold_energy: float
    _windows_done: int

    def __init__(
        self,
        sample_rate: int,
        *,
        threshold_db: float = -40.0,
        min_speech_ms: float = 100,
        min_silence_ms: float = 500,
        prefix_padding_ms: float = 300,
    ) -> None:
        if sample_rate < 1000:
            raise ValueError(f"sample_rate must be >= 1000 Hz, got {sample_rate}")
        self.sample_rate = sample_rate
        self._window = max(1, round(sample_rate * _WINDOW_MS / 1000))
        self._ms_per_sample = 1000.0 / sample_rate
        self.configure(
            threshold_db=threshold_db,
            min_speech_ms=min_speech_ms,
            min_silence_ms=min_silence_ms,
            prefix_padding_ms=prefix_padding_ms,
        )
        self.reset()

    def configure(
        self,
        *,
        threshold_db: float | None = None,
        min_speech_ms: float | None = None,
        min_silence_ms: float | None = None,
        prefix_padding_ms: float | None = None,
    ) -> None:
        """Change settings mid-stream (e.g. on ``session.update``) keeping the audio timeline.

        Arguments left as ``None`` keep their current value.
        """
        threshold_db = self.threshold_db if threshold_db is None else float(threshold_db)
        min_speech_ms = self.min_speech_ms if min_speech_ms is None else float(min_speech_ms)
        min_silence_ms = self.min_silence_ms if min_silence_ms is None else float(min_silence_ms)
        prefix_padding_ms = (
            self.prefix_padding_ms if prefix_padding_ms is None else float(prefix_padding_ms)
        )
        if min(min_speech_ms, min_silence_ms, prefix_padding_ms) < 0:
            raise ValueError("min_speech_ms, min_silence_ms and prefix_padding_ms must be >= 0")
        self.threshold_db = threshold_db
        self.min_speech_ms = min_speech_ms
        self.min_silence_ms = min_silence_ms
        self.prefix_padding_ms = prefix_padding_ms
        window_ms = self._window * self._ms_per_sample
        # whole windows needed; at least one so a lone window is judged like any other
        self._min_speech_windows = max(1, int(np.ceil(min_speech_ms / window_ms - 1e-9)))
        self._min_silence_windows = max(1, int(np.ceil(min_silence_ms / window_ms - 1e-9)))
        self._threshold_energy = _FULL_SCALE_SQ * 10.0 ** (threshold_db / 10.0)

    def reset(self) -> None:
        """Forget all state; the audio timeline restarts at 0 ms."""
        self._rem: Int16Array = np.zeros(0, dtype=np.int16)
        self._windows_done = 0
        self._in_speech = False
        self._cand_start = -1  # first window of the current voiced run (not yet speech)
        self._cand_windows = 0
        self._silence_windows = 0
        self._last_voiced_end = 0  # window index just after the last voiced window
        self._last_stop_ms = 0.0

    @property
    def in_speech(self) -> bool:
        """Whether the detector is currently inside a speech segment."""
        return self._in_speech

    @property
    def position_ms(self) -> float:
        """Milliseconds of audio fed so far (including a partial window not yet analysed)."""
        samples = self._windows_done * self._window + int(self._rem.shape[0])
        return samples * self._ms_per_sample

    def _window_ms(self, index: int) -> float:
        return index * self._window * self._ms_per_sample

    @staticmethod
    def _mean_square(frames: Int16Array) -> npt.NDArray[np.float32]:
        f = frames.astype(np.float32)
        out: npt.NDArray[np.float32] = np.einsum("ij,ij->i", f, f) / np.float32(frames.shape[1])
        return out

    def _energy_db(self, frames: Int16Array) -> npt.NDArray[np.float64]:
        ms = self._mean_square(frames).astype(np.float64)
        return np.asarray(10.0 * np.log10(ms / _FULL_SCALE_SQ + _ENERGY_FLOOR), dtype=np.float64)

    def _quiet(self, buf: Int16Array) -> bool:
        """True when no sample of ``buf`` is loud enough for any window to be voiced.

        Why: a caller is silent most of the time and a realtime server runs this on every
        append; two reductions over the chunk cost a fraction of the per-window energies.
        """
        peak = max(int(buf.max()), -int(buf.min()))
        return peak * peak <= self._threshold_energy

    def process(self, samples: Int16Array) -> list[VADEvent]:
        """Analyse the next chunk; return the events decided within it, in order."""
        if samples.dtype != np.int16 or samples.ndim != 1:
            raise ValueError(
                f"EnergyVAD expects mono int16 samples of shape (n,), got "
                f"{samples.dtype} {samples.shape}"
            )
        win = self._window
        buf = np.concatenate((self._rem, samples)) if self._rem.shape[0] else samples
        n = buf.shape[0] // win
        self._rem = buf[n * win :].copy()
        if n == 0:
            return []
        if not self._in_speech and self._quiet(buf):
            # Fast path, exact: no window's mean square can exceed the squared peak.
            self._windows_done += n
            self._cand_start, self._cand_windows = -1, 0
            return []
        voiced = self._mean_square(buf[: n * win].reshape(n, win)) > self._threshold_energy
        base = self._windows_done
        self._windows_done += n
        events: list[VADEvent] = []

        # fast paths: nothing can change inside this chunk
        if not self._in_speech and not voiced.any():
            self._cand_start, self._cand_windows = -1, 0
            return events
        if self._in_speech and voiced.all():
            self._silence_windows = 0
            self._last_voiced_end = base + n
            return events

        for i, is_voiced in enumerate(voiced.tolist()):
            event = self._step(base + i, is_voiced)
            if event is not None:
                events.append(event)
        return events

    def _step(self, index: int, is_voiced: bool) -> VADEvent | None:
        """Window `index` of a chunk with both kinds of window: the event it decides, if any.

        Apart from `process` so the quiet and all-voiced chunks (most of a call) never pay
        a call per window."""
        if not self._in_speech:
            if not is_voiced:
                self._cand_start, self._cand_windows = -1, 0
                return None
            if self._cand_start < 0:
                self._cand_start = index
            self._cand_windows += 1
            if self._cand_windows < self._min_speech_windows:
                return None
            onset = self._window_ms(self._cand_start)
            at = max(onset - self.prefix_padding_ms, self._last_stop_ms, 0.0)
            self._in_speech = True
            self._silence_windows = 0
            self._last_voiced_end = index + 1
            self._cand_start, self._cand_windows = -1, 0
            return VADEvent("speech_started", at, onset, self._window_ms(index + 1))
        if is_voiced:
            self._silence_windows = 0
            self._last_voiced_end = index + 1
            return None
        self._silence_windows += 1
        if self._silence_windows < self._min_silence_windows:
            return None
        end = self._window_ms(self._last_voiced_end)
        decided = self._window_ms(index + 1)
        self._in_speech = False
        self._last_stop_ms = decided
        self._silence_windows = 0
        return VADEvent("speech_stopped", decided, end, decided)

    def flush(self) -> list[VADEvent]:
        """End of input: close an open speech segment at the current position.

        OpenAI closes the turn when the client commits the buffer; call this on commit or
        end of stream so every ``speech_started`` gets its ``speech_stopped``.
        """
        if not self._in_speech:
            return []
        end = self._window_ms(self._last_voiced_end)
        now = self.position_ms
        self._in_speech = False
        self._last_stop_ms = now
        self._silence_windows = 0
        return [VADEvent("speech_stopped", now, end, now)]
