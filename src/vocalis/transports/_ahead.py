"""Bounded agent audio ahead of playback (`CallBudget.max_audio_ahead_s`), for network sinks.

Why it exists: a network sink (Twilio, the playground page) sends agent audio as fast as the
provider produces it, and the far end plays it at real time. A provider that sends an hour of
audio in one delta, or a far end that stops playing, would make the call hold (and queue for
the socket) everything not yet heard. So a sink keeps at most `max_samples` sent-or-held but
not yet played; audio beyond that is dropped, once per segment logged, and the segment can then
never be `full` (what was dropped was never heard — the heard contract stays exact).
"""

from __future__ import annotations

import logging

import numpy as np

from vocalis.audio.frame import Int16Array

__all__ = ["trim_ahead"]

log = logging.getLogger("vocalis.transports")


def trim_ahead(
    samples: Int16Array, ahead: int, max_samples: int, label: str, *, quiet: bool = False
) -> Int16Array:
    """The part of `samples` that fits when `ahead` samples are already waiting to play
    (`quiet`: this segment already said it drops audio)."""
    room = max_samples - ahead
    if samples.shape[0] <= room:
        return samples
    kept = samples[: max(0, room)]
    if quiet:
        return np.ascontiguousarray(kept)
    log.warning(
        "%s: agent audio more than %d samples ahead of playback; dropping %d samples",
        label,
        max_samples,
        samples.shape[0] - kept.shape[0],
    )
    return np.ascontiguousarray(kept)
