"""The WebRTC side of the segment contract: the browser's playout position is the clock.

Why it exists: the agent's audio reaches the browser as one Opus stream (`OutboundTrack`), and
only the browser knows how far it has played. The page reads the RTP timestamp of the last
frame its receiver played from a real packet (`RTCRtpReceiver.getSynchronizationSources()`)
and reports it over the data channel; this sink turns it into a stream position and lets the
sans-I/O `OutputTimeline` decide each message's verdict. Concealment (audio the receiver
invents for lost or late packets) never advances that timestamp, so it is never counted.

Data channel messages sent: `segment {n, id}` (a message begins), `start {n, rtp}` (its first
sample is on the stream), `clear {rtp}` (barge-in: stop hearing stream audio before `rtp`;
audio after it is silence). The page answers `pos {rtp}` about every 50 ms and
`cleared {rtp}` with its position at the moment it muted.

Results:
- `full` when the played position passes the end of an ended message;
- `clear()` stops the stream at once (the next frame is silence), tells the page to mute its
  buffered tail, and resolves the cleared messages at the position the page reports back
  (`partial` / `skipped`), or at the last reported one after `clear_timeout_s`;
- a page that stops reporting while it holds audio for `report_timeout_s` (frozen tab,
  dead connection) trips the report watchdog: the messages resolve from the last report;
- `pause()` / `resume()` hold the stream (silence, positions frozen) for a false
  interruption; the timeline keeps the positions straight across the gap.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np

from vocalis.audio.frame import Int16Array
from vocalis.audio.resample import StreamResampler
from vocalis.transports.base import AudioSink, OutputSegment
from vocalis.transports.webrtc.timeline import (
    STREAM_RATE,
    OutputTimeline,
    ReportEffects,
    rtp_to_position,
)
from vocalis.transports.webrtc.track import OutboundTrack
from vocalis.utils.clock import Clock

__all__ = ["SendJson", "WebRTCAudioSink", "WebRTCSegment"]

SendJson = Callable[[dict[str, object]], None]


class WebRTCSegment(OutputSegment):
    """One message on the stream; its audio is resampled to 48 kHz at the edge."""

    def __init__(self, sink: WebRTCAudioSink, n: int, segment_id: str, sample_rate: int):
        super().__init__(segment_id, sample_rate)
        self.n = n
        self._sink = sink
        self._resampler = StreamResampler(sample_rate, STREAM_RATE)

    @property
    def played_ms(self) -> float:
        """Its audio before the last played position the page reported."""
        return self._sink.timeline.played(self.n) * 1000.0 / STREAM_RATE

    def push(self, samples: np.ndarray) -> None:
        if not self._sink.timeline.accepting(self.n) or not self._accept(samples):
            return
        self._sink.timeline.push(self.n, self._resampler.push(samples))

    def end(self) -> None:
        if self.done or self._ended or not self._sink.timeline.accepting(self.n):
            return
        self._ended = True
        self._sink.timeline.push(self.n, self._resampler.flush())
        self._sink.timeline.end(self.n)


class WebRTCAudioSink(AudioSink):
    """AudioSink whose playback clock is the browser's receiver (see the module docstring)."""

    def __init__(
        self,
        send_json: SendJson,
        clock: Clock,
        *,
        clear_timeout_s: float = 1.0,
        report_timeout_s: float = 3.0,
        max_report_lag_s: float = 10.0,
    ) -> None:
        if report_timeout_s <= 0 or clear_timeout_s <= 0:
            raise ValueError("clear_timeout_s and report_timeout_s must be positive")
        self._send = send_json
        self.clock = clock
        self.clear_timeout_s = clear_timeout_s
        self.report_timeout_s = report_timeout_s
        self._max_lag = int(max_report_lag_s * STREAM_RATE)
        self.timeline = OutputTimeline()
        self.track = OutboundTrack(self._next_frame, clock)
        self._segments: dict[int, WebRTCSegment] = {}
        self._unannounced: deque[int] = deque()  # open messages whose `start` is not sent
        self._count = 0
        self._closed = False
        self._clear_deadline: float | None = None  # awaiting `cleared` until then
        self._last_report_at: float | None = None  # None: the page owes no reports
        self.clear_timeouts = 0
        self.report_timeouts = 0
        self.ignored_reports = 0

    # ------------------------------------------------------------------ AudioSink API

    def begin_segment(self, segment_id: str, sample_rate: int) -> WebRTCSegment:
        if self._closed:
            raise RuntimeError("WebRTC connection is closed")
        self._count += 1
        seg = WebRTCSegment(self, self._count, segment_id, sample_rate)
        self._segments[seg.n] = seg
        self.timeline.open(seg.n)
        self._unannounced.append(seg.n)
        self._send({"type": "segment", "n": seg.n, "id": segment_id})
        return seg

    def clear(self) -> None:
        if not self.timeline.pending:
            return
        stop_at = self.timeline.stop()
        self._unannounced.clear()
        self._last_report_at = None
        if self._closed:
            self._finish_clear(None)
            return
        self._send({"type": "clear", "rtp": self.track.rtp_timestamp(stop_at)})
        self._clear_deadline = self.clock.now() + self.clear_timeout_s

    @property
    def playing(self) -> bool:
        return self.timeline.holding_audio

    @property
    def can_pause(self) -> bool:
        return not self._closed

    def pause(self) -> None:
        """Silence goes out and positions freeze until `resume()` (or `clear()`)."""
        self.timeline.paused = True

    def resume(self) -> None:
        self.timeline.paused = False

    async def aclose(self) -> None:
        """The call is over: stop the stream and resolve every message from the last report."""
        self.connection_lost()

    # ------------------------------------------------------------------ the stream

    def _next_frame(self) -> Int16Array:
        """One frame for the track; also the tick (every 20 ms of the clock) of the report
        watchdog and of the wait for `cleared`."""
        frame = self.timeline.next_frame()
        while self._unannounced:
            n = self._unannounced[0]
            first = self.timeline.first_sample(n)
            if first is None:
                break
            self._unannounced.popleft()
            self._send({"type": "start", "n": n, "rtp": self.track.rtp_timestamp(first)})
        self._watch_reports()
        return frame

    def _watch_reports(self) -> None:
        now = self.clock.now()
        if self._clear_deadline is not None and now >= self._clear_deadline:
            self.clear_timeouts += 1
            self._finish_clear(None)
        if not self.timeline.holding_audio or self.timeline.paused:
            self._last_report_at = None
            return
        if self._last_report_at is None:
            self._last_report_at = now  # audio is out: from now on silence of reports counts
        elif now - self._last_report_at >= self.report_timeout_s:
            self.report_timeouts += 1
            self.clear()
            self._finish_clear(None)

    # ------------------------------------------------------------------ page reports

    def _position(self, rtp: int | None) -> int | None:
        origin = self.track.rtp_origin
        if rtp is None or origin is None:
            return None
        position = rtp_to_position(
            rtp, origin=origin, emitted=self.timeline.position, max_lag=self._max_lag
        )
        if position is None:
            self.ignored_reports += 1
        return position

    def on_position(self, rtp: int) -> None:
        """The page's receiver played stream audio up to RTP timestamp `rtp`."""
        position = self._position(rtp)
        if position is not None:
            if self._last_report_at is not None:
                self._last_report_at = self.clock.now()
            self._resolve(self.timeline.report(position))

    def on_cleared(self, rtp: int | None) -> None:
        """The page muted after a `clear`: `rtp` is its position at that moment."""
        self._finish_clear(self._position(rtp))

    def _finish_clear(self, position: int | None) -> None:
        """Resolve the cleared messages at `position` (None: the last reported one)."""
        self._clear_deadline = None
        self._resolve(self.timeline.finish(position))

    def connection_lost(self) -> None:
        """No more reports will come: everything resolves from the last one."""
        self._closed = True
        self._clear_deadline = None
        self._resolve(self.timeline.finish(everything=True))
        self.track.stop()

    def _resolve(self, effects: ReportEffects) -> None:
        now = self.clock.now()
        for n in effects.started:
            seg = self._segments.get(n)
            if seg is not None:
                seg._mark_started(now)
        for verdict in effects.resolved:
            seg = self._segments.pop(verdict.n, None)
            if seg is not None:
                played_ms = verdict.played * 1000.0 / STREAM_RATE
                seg._conclude(verdict.outcome, played_ms, now)
