"""Real-time pacing of caller audio: no peer gets more audio upstream than time has passed.

Why it exists: a phone line or a microphone produces one second of audio per second. A peer
that sends faster (5 s of flooding carried 12,329 s of audio) turns every forwarded second
into a paid second at the realtime provider — a cost-amplification attack — and grows every
buffer on the way. So each call's inbound audio has a budget: wall time since its first frame
plus `slack_s` (network jitter delivers late frames in bursts). Audio beyond the budget is
dropped; once `close_after_s` of audio has been dropped the call is closed as a protocol
violation (1008). Counted process-wide in `PACING` for the metrics.

`AudioPacer` is the pure decision core: the caller passes sample counts and the time;
`admit_audio` is what a transport's message handler calls.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

__all__ = ["PACING", "AudioPacer", "PaceVerdict", "PacingTotals", "admit_audio"]

DEFAULT_SLACK_S = 2.0
DEFAULT_CLOSE_AFTER_S = 10.0


class PaceVerdict(enum.Enum):
    ACCEPT = "accept"
    # Over budget: drop this frame, keep the call.
    DROP = "drop"
    # Dropped more than `close_after_s` of audio: close the call (1008).
    CLOSE = "close"


@dataclass
class PacingTotals:
    """Process-wide counts (read by the worker's metrics; never reset)."""

    dropped_audio_s: float = 0.0
    calls_closed: int = 0


PACING = PacingTotals()


class AudioPacer:
    """The audio budget of one inbound stream at `sample_rate`."""

    def __init__(
        self,
        sample_rate: int,
        *,
        slack_s: float = DEFAULT_SLACK_S,
        close_after_s: float | None = DEFAULT_CLOSE_AFTER_S,
        totals: PacingTotals = PACING,
    ) -> None:
        if sample_rate <= 0 or slack_s < 0:
            raise ValueError("sample_rate must be positive and slack_s non-negative")
        self.sample_rate = sample_rate
        self._slack = slack_s * sample_rate
        self._close_after = None if close_after_s is None else close_after_s * sample_rate
        self._totals = totals
        self._start: float | None = None
        self.accepted_samples = 0
        self.dropped_samples = 0
        self.closed = False

    def offer(self, samples: int, now: float) -> PaceVerdict:
        """May `samples` more go upstream at time `now` (seconds, monotonic)?"""
        if self._start is None:
            self._start = now
        budget = (now - self._start) * self.sample_rate + self._slack
        if self.accepted_samples + samples <= budget:
            self.accepted_samples += samples
            return PaceVerdict.ACCEPT
        self.dropped_samples += samples
        self._totals.dropped_audio_s += samples / self.sample_rate
        if self._close_after is not None and self.dropped_samples > self._close_after:
            if not self.closed:
                self.closed = True
                self._totals.calls_closed += 1
            return PaceVerdict.CLOSE
        return PaceVerdict.DROP

    @property
    def dropped_s(self) -> float:
        return self.dropped_samples / self.sample_rate


def admit_audio(
    pacer: AudioPacer,
    samples: int,
    now: float,
    protocol_error: type[Exception],
    log: logging.Logger,
) -> bool:
    """Whether `samples` of caller audio may go upstream now. Past the close budget this
    raises `protocol_error` (the transport closes with 1008); the first drop is logged once."""
    verdict = pacer.offer(samples, now)
    if verdict is PaceVerdict.ACCEPT:
        return True
    if verdict is PaceVerdict.CLOSE:
        raise protocol_error(
            f"caller audio arrives faster than real time ({pacer.dropped_s:.0f} s dropped)"
        )
    if pacer.dropped_samples == samples:
        log.warning("caller audio arrives faster than real time; dropping the excess")
    return False
