"""The outbound audio track: one 20 ms frame of the sink's timeline per 20 ms, to aiortc.

Why it exists: aiortc's RTP sender pulls frames from a `MediaStreamTrack` as fast as `recv()`
returns them and Opus-encodes each; the track is the pacing. Producing each frame just in
time (never ahead) is what lets a barge-in stop the agent at once: at most the frame being
encoded and what the browser's jitter buffer holds are still on their way.

It also learns the RTP timestamp of stream sample 0 (`rtp_origin`): aiortc draws a random
timestamp origin per sender and adds it to every frame's `pts`, and the browser reports
playout as RTP timestamps. aiortc does not expose the origin, so it is read once from the
sender's last-sent timestamp, when exactly one packet per frame has gone out so far (the
Opus encoder in aiortc ≥ 1.9 emits one packet per 20 ms frame with the frame's `pts`). This is
the one place that reads a private attribute of aiortc (locked in `uv.lock`); if it ever
disappears, `rtp_origin` stays None, reports are ignored, and the tests fail loudly.
"""

from __future__ import annotations

import fractions
import logging
from collections.abc import Callable

import av
from aiortc import MediaStreamTrack, RTCRtpSender
from aiortc.mediastreams import MediaStreamError

from vocalis.audio.frame import Int16Array
from vocalis.transports.webrtc.timeline import FRAME_SAMPLES, RTP_MODULUS, STREAM_RATE
from vocalis.utils.clock import Clock

__all__ = ["OutboundTrack"]

_TIME_BASE = fractions.Fraction(1, STREAM_RATE)
_FRAME_S = FRAME_SAMPLES / STREAM_RATE
# Name-mangled private state of aiortc's RTCRtpSender (see the module docstring).
_SENT_TIMESTAMP = "_RTCRtpSender__rtp_timestamp"
_SENT_PACKETS = "_RTCRtpSender__packet_count"
_ORIGIN_PATIENCE_FRAMES = 50  # one second of frames
log = logging.getLogger("vocalis.transports.webrtc")


class OutboundTrack(MediaStreamTrack):
    """Audio track whose frames come from `next_frame()` (int16 mono, `FRAME_SAMPLES`)."""

    kind = "audio"

    def __init__(self, next_frame: Callable[[], Int16Array], clock: Clock) -> None:
        super().__init__()
        self._next_frame = next_frame
        self._clock = clock
        self._frames = 0  # frames handed to the sender
        self._t0: float | None = None
        self.sender: RTCRtpSender | None = None
        self.rtp_origin: int | None = None

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._t0 is None:
            self._t0 = self._clock.now()
        else:
            # Due times follow the stream, not the task: a late wake-up catches up at once.
            await self._clock.sleep_until(self._t0 + self._frames * _FRAME_S)
            if self.readyState != "live":
                raise MediaStreamError
            if self.rtp_origin is None:
                self._learn_origin()
        samples = self._next_frame()
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = STREAM_RATE
        frame.pts = self._frames * FRAME_SAMPLES
        frame.time_base = _TIME_BASE
        self._frames += 1
        return frame

    def _learn_origin(self) -> None:
        """RTP timestamp of stream sample 0, from the packet of the previous frame."""
        sender = self.sender
        if sender is None:
            return
        sent = getattr(sender, _SENT_PACKETS, None)
        timestamp = getattr(sender, _SENT_TIMESTAMP, None)
        if isinstance(sent, int) and isinstance(timestamp, int) and sent == self._frames:
            self.rtp_origin = (timestamp - (self._frames - 1) * FRAME_SAMPLES) % RTP_MODULUS
        elif self._frames == _ORIGIN_PATIENCE_FRAMES:
            # Without the origin every playout report is ignored and messages resolve from the
            # report watchdog: say so once, loudly, instead of failing quietly per message.
            log.error(
                "webrtc: cannot learn the RTP timestamp origin from aiortc's sender "
                "(aiortc version changed?); playout reports are ignored for this call"
            )

    def rtp_timestamp(self, position: int) -> int | None:
        """The RTP timestamp of stream `position` (None until the origin is known)."""
        if self.rtp_origin is None:
            return None
        return (self.rtp_origin + position) % RTP_MODULUS
