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

__all__ = ["fit_ahead"]

log = logging.getLogger("vocalis.transports")


def fit_ahead(
    audio: Int16Array, ahead: int, max_samples: int, segment_id: str, dropped: int
) -> tuple[Int16Array, int]:
    """(the part of `audio` that fits when `ahead` samples already wait to play, the segment's
    new count of dropped samples). The first drop of a segment is logged, later ones not."""
    room = max_samples - ahead
    if audio.shape[0] <= room:
        return audio, dropped
    kept = np.ascontiguousarray(audio[: max(0, room)])
    if not dropped:
        log.warning(
            "segment %s: agent audio more than %d samples ahead of playback; dropping the excess",
            segment_id,
            max_samples,
        )
    return kept, dropped + audio.shape[0] - kept.shape[0]
