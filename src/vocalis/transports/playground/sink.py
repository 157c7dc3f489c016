"""The browser side of the segment contract: the page's audio worklet is the playback clock.

Why it exists: the browser plays agent audio on its own clock (an `AudioWorklet` at the
server's rate), so only the page knows what was heard. Every segment is announced to the page
(`segment` n, id), its audio follows as binary messages (4-byte little-endian segment number +
PCM16), then `segment_end`. The page's player reports per segment `started`, `pos` (about
every 50 ms), `done` and — in answer to `clear` — the exact sample where each segment stopped.

Results:
- `full` when the page reports `done` (all audio of an ended segment played);
- on `clear()` the sink tells the page to stop and resolves the pending segments with the
  positions the page reports back (`partial` / `skipped`); if the page does not answer within
  `clear_timeout_s`, the last reported positions are used (never more than was reported);
- if the connection drops, segments resolve from the last reported positions;
- `pause()` / `resume()` hold the page's player (false-interruption resume): it plays silence
  with its positions frozen and keeps reporting them, so a `clear()` during the pause resolves
  at the paused position;
- if the page stops reporting while it holds audio (a frozen or throttled tab, a suspended
  `AudioContext`, a page script error), the *report watchdog* resolves the pending segments
  from the last reported positions after `report_timeout_s` without a report and tells the
  page to stop (`clear`). A live page reports every ~50 ms while it holds a started segment,
  even while starved, so only a page that stopped working trips it; without it the runtime
  would wait for that segment's verdict until the caller hangs up.
"""

from __future__ import annotations

import asyncio
import json
import struct

import numpy as np

from vocalis.audio.frame import Int16Array
from vocalis.audio.resample import StreamResampler
from vocalis.runtime.budget import DEFAULT_BUDGET
from vocalis.transports._ahead import fit_ahead
from vocalis.transports._web import Outbox
from vocalis.transports.base import AudioSink, OutputSegment, PlayoutStatus
from vocalis.utils.clock import Clock

__all__ = ["PlaygroundAudioSink", "PlaygroundSegment"]

_HEADER = struct.Struct("<I")


class PlaygroundSegment(OutputSegment):
    def __init__(self, sink: PlaygroundAudioSink, n: int, segment_id: str, sample_rate: int):
        super().__init__(segment_id, sample_rate)
        self.n = n
        self._sink = sink
        # Passes audio through untouched when the rates are equal.
        self._resampler = StreamResampler(sample_rate, sink.sample_rate)
        self._sent = 0  # samples at the sink rate
        self._played = 0  # samples reported played by the page
        self._dropped = 0  # samples over the audio-ahead budget, never sent

    @property
    def played_ms(self) -> float:
        """Last position the page reported for this segment."""
        return self._played * 1000.0 / self._sink.sample_rate

    def push(self, samples: np.ndarray) -> None:
        if self._sink._clearing_has(self) or not self._accept(samples):
            return
        self._send(self._fit(self._resampler.push(samples)))

    def _fit(self, audio: Int16Array) -> Int16Array:
        """What of `audio` fits in the sink's audio-ahead budget (the rest is dropped)."""
        sink = self._sink
        out, self._dropped = fit_ahead(
            audio, sink._ahead(), sink.max_ahead_samples, self.id, self._dropped
        )
        return out

    def _send(self, samples: Int16Array) -> None:
        if samples.shape[0]:
            self._sink._audio_sent()
            self._sent += samples.shape[0]
            pcm = samples.astype("<i2", copy=False).tobytes()
            self._sink._outbox.send(_HEADER.pack(self.n) + pcm)

    def end(self) -> None:
        if self.done or self._ended or self._sink._clearing_has(self):
            return
        self._ended = True
        self._send(self._fit(self._resampler.flush()))
        self._sink._send_json({"type": "segment_end", "n": self.n})

    def _report(self, played: int) -> None:
        played = max(0, min(played, self._sent))
        if played > self._played:
            self._played = played

    def _finish(self, status: PlayoutStatus, now: float) -> None:
        if status is not PlayoutStatus.SKIPPED and self._played == 0:
            status = PlayoutStatus.SKIPPED
        elif status is PlayoutStatus.FULL and self._dropped:
            status = PlayoutStatus.PARTIAL  # audio over the budget was never heard
        self._conclude(status, self.played_ms, now)


class PlaygroundAudioSink(AudioSink):
    """AudioSink whose playback clock is the browser page (see the module docstring)."""

    def __init__(
        self,
        outbox: Outbox,
        clock: Clock,
        sample_rate: int = 24000,
        *,
        clear_timeout_s: float = 1.0,
        report_timeout_s: float = 3.0,
        max_audio_ahead_s: float = DEFAULT_BUDGET.max_audio_ahead_s,
    ) -> None:
        if report_timeout_s <= 0:
            raise ValueError("report_timeout_s must be positive")
        self.max_ahead_samples = int(max_audio_ahead_s * sample_rate)
        self._outbox = outbox
        self.clock = clock
        self.sample_rate = sample_rate
        self.clear_timeout_s = clear_timeout_s
        self.report_timeout_s = report_timeout_s
        self._segments: dict[int, PlaygroundSegment] = {}
        self._clearing: dict[int, PlaygroundSegment] = {}
        self._count = 0
        self._closed = False
        self._timeout: asyncio.TimerHandle | None = None
        # Report watchdog: runs on `clock` while the page holds audio it must report on.
        self._last_report_at = 0.0
        self._watchdog: asyncio.Task[None] | None = None
        # Page reports received (starts, positions, ends, clears): proof the page is alive,
        # e.g. that it goes on reporting while paused.
        self.reports = 0
        self.clear_timeouts = 0
        self.report_timeouts = 0

    def _send_json(self, message: dict[str, object]) -> None:
        self._outbox.send(json.dumps(message, separators=(",", ":")))

    def _clearing_has(self, seg: PlaygroundSegment) -> bool:
        return seg.n in self._clearing

    # ------------------------------------------------------------------ AudioSink API

    def begin_segment(self, segment_id: str, sample_rate: int) -> PlaygroundSegment:
        if self._closed:
            raise RuntimeError("playground connection is closed")
        self._count += 1
        seg = PlaygroundSegment(self, self._count, segment_id, sample_rate)
        self._segments[seg.n] = seg
        self._send_json({"type": "segment", "n": seg.n, "id": segment_id})
        return seg

    def clear(self) -> None:
        if not self._segments:
            return
        if not self._stop_page():
            self._resolve_clearing()
            return
        if self._timeout is not None:
            self._timeout.cancel()
        self._timeout = asyncio.get_running_loop().call_later(
            self.clear_timeout_s, self._on_clear_timeout
        )

    def _stop_page(self) -> bool:
        """Move every pending segment to clearing and tell the page to stop (if connected)."""
        self._clearing.update(self._segments)
        self._segments = {}
        self._stop_watchdog()
        if self._closed:
            return False
        # Audio still queued for the socket would only be thrown away by the page.
        self._outbox.purge(binary_only=True)
        self._send_json({"type": "clear"})
        return True

    def _on_clear_timeout(self) -> None:
        self._timeout = None
        if self._clearing:
            self.clear_timeouts += 1
            self._resolve_clearing()

    def _resolve_clearing(self) -> None:
        now = self.clock.now()
        clearing, self._clearing = self._clearing, {}
        for seg in sorted(clearing.values(), key=lambda s: s.n):
            seg._finish(PlayoutStatus.PARTIAL, now)

    def _ahead(self) -> int:
        """Samples sent to the page and not yet reported played."""
        return sum(s._sent - s._played for s in self._segments.values())

    @property
    def playing(self) -> bool:
        return any(s._sent for s in self._segments.values())

    @property
    def pending_segments(self) -> int:
        return len(self._segments) + len(self._clearing)

    @property
    def can_pause(self) -> bool:
        return not self._closed

    def pause(self) -> None:
        """The page's player holds (positions frozen; it keeps reporting them)."""
        if not self._closed:
            self._send_json({"type": "pause"})

    def resume(self) -> None:
        if not self._closed:
            self._send_json({"type": "resume"})

    # ------------------------------------------------------------------ page reports

    def _lookup(self, n: int) -> PlaygroundSegment | None:
        """The segment a page report is about; every report also feeds the watchdog."""
        self._page_reported()
        return self._segments.get(n) or self._clearing.get(n)

    def _page_reported(self) -> None:
        self._last_report_at = self.clock.now()
        self.reports += 1

    # ------------------------------------------------------------------ report watchdog

    def _audio_sent(self) -> None:
        """Audio goes to the page: from now on silence of reports counts.

        While `playing` (the page holds audio of a pending segment) the page owes reports.
        """
        if self._closed or (self._watchdog is not None and not self._watchdog.done()):
            return
        if not self.playing:
            self._last_report_at = self.clock.now()
        self._watchdog = asyncio.get_running_loop().create_task(
            self._watch_reports(), name="vocalis-playground-reports"
        )

    async def _watch_reports(self) -> None:
        clock = self.clock
        while self.playing and not self._closed:
            deadline = self._last_report_at + self.report_timeout_s
            if clock.now() < deadline:
                await clock.sleep_until(deadline)
                continue
            self.report_timeouts += 1
            self._stop_page()
            self._resolve_clearing()
            return

    def _stop_watchdog(self) -> None:
        task, self._watchdog = self._watchdog, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def on_started(self, n: int) -> None:
        seg = self._lookup(n)
        if seg is not None:
            seg._mark_started(self.clock.now())

    def on_position(self, n: int, played: int) -> None:
        seg = self._lookup(n)
        if seg is not None:
            seg._report(played)

    def on_done(self, n: int, played: int) -> None:
        """The page played segment n to its end (it was ended and drained)."""
        if self._lookup(n) is None:
            return
        seg = self._segments.pop(n, None) or self._clearing.pop(n)
        seg._report(played)
        now = self.clock.now()
        if seg._played:
            seg._mark_started(now)
        seg._finish(PlayoutStatus.FULL if seg._played >= seg._sent else PlayoutStatus.PARTIAL, now)

    def on_cleared(self, positions: list[tuple[int, int]]) -> None:
        """The page stopped: exact positions of the segments it still had."""
        self._page_reported()
        for n, played in positions:
            seg = self._clearing.get(n)
            if seg is not None:
                seg._report(played)
        if self._timeout is not None:
            self._timeout.cancel()
            self._timeout = None
        self._resolve_clearing()

    def connection_lost(self) -> None:
        self._closed = True
        self._stop_watchdog()
        if self._timeout is not None:
            self._timeout.cancel()
            self._timeout = None
        self._clearing.update(self._segments)
        self._segments = {}
        self._resolve_clearing()

    async def aclose(self) -> None:
        """Stop the page's playback and resolve everything now (session over)."""
        self.clear()
        if self._timeout is not None:
            self._timeout.cancel()
            self._timeout = None
        self._resolve_clearing()
        self._closed = True
        self._stop_watchdog()
