"""The Twilio side of the segment contract: what played is what Twilio acknowledged.

Why it exists: Twilio buffers whatever we send and plays it at its own pace, so bytes sent say
nothing about what the caller heard (P9: a 10 s disclaimer "interrupted" after it was sent
kept playing and the model believed it had all been said). The only playback clock we get is
`mark`: Twilio echoes a mark once the audio sent before it has played. So:

- audio of each segment is resampled to 8 kHz, μ-law encoded and re-buffered into frames of
  exactly 160 bytes (20 ms); only a segment's final flush may be shorter (S27);
- a mark follows the first frame of a segment (to learn when it started), then one every
  `mark_interval_ms`, and one after the segment's last frame;
- a segment's `played_ms` is the position of its last acknowledged mark (so it is exact to
  `mark_interval_ms`, and never more than what really played); `full` when its end mark
  comes back;
- `clear()` sends Twilio `clear`, drops outbound messages not yet written to the socket, and
  resolves segments from acknowledged marks only: `partial(last acked)` or `skipped`.
  Twilio then echoes all pending marks — they carry the old generation and are ignored, as is
  any unknown mark name (stale marks must never move a cleared segment).

Segments are sent in order: a later segment's audio is held until the earlier ones have
ended (back to back, no interleaving).

Playback watchdog: Twilio echoes a mark every `mark_interval_ms` of audio while it plays. If
marks are outstanding and none has come back for `mark_timeout_s` (a stalled or hostile
stream that takes audio but never acknowledges it), the sink clears: Twilio is told to stop,
and the pending segments resolve from what was acknowledged. Without it the runtime would wait
for a verdict until the caller hangs up (the playground sink has the same rule for reports).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque

import numpy as np

from vocalis.audio.chunker import FrameChunker
from vocalis.audio.frame import Int16Array
from vocalis.audio.g711 import ulaw_encode
from vocalis.audio.resample import StreamResampler
from vocalis.runtime.budget import DEFAULT_BUDGET
from vocalis.transports._ahead import fit_ahead
from vocalis.transports._web import Outbox
from vocalis.transports.base import AudioSink, OutputSegment, PlayoutStatus
from vocalis.transports.twilio.protocol import clear_message, mark_message, media_message
from vocalis.utils.clock import Clock

__all__ = ["TWILIO_FRAME_BYTES", "TWILIO_RATE", "TwilioAudioSink", "TwilioSegment"]

log = logging.getLogger("vocalis.transports.twilio")

TWILIO_RATE = 8000
TWILIO_FRAME_BYTES = 160  # 20 ms of μ-law at 8 kHz


class TwilioSegment(OutputSegment):
    def __init__(self, sink: TwilioAudioSink, segment_id: str, sample_rate: int) -> None:
        super().__init__(segment_id, sample_rate)
        self._sink = sink
        self._index = sink._next_index()
        self._resampler = StreamResampler(sample_rate, TWILIO_RATE)
        self._chunker = FrameChunker(TWILIO_FRAME_BYTES)
        self._held: list[Int16Array] = []  # 8 kHz audio waiting for earlier segments
        self._sent = 0  # samples (8 kHz) sent to Twilio
        self._acked = 0  # samples (8 kHz) acknowledged by marks
        self._last_mark_at = 0
        self._end_sent = False
        self._marks = 0
        self._dropped = 0  # samples (8 kHz) over the audio-ahead budget, never sent
        self._held_samples = 0

    @property
    def played_ms(self) -> float:
        """Acknowledged position (ms of this segment's audio known to have played)."""
        return self._acked * 1000.0 / TWILIO_RATE

    @property
    def sent_ms(self) -> float:
        return self._sent * 1000.0 / TWILIO_RATE

    def push(self, samples: np.ndarray) -> None:
        if not self._accept(samples):
            return
        out = self._fit(self._resampler.push(samples))
        sink = self._sink
        if out.shape[0]:
            if sink._is_sending(self):
                self._send_frames(out)
            else:
                self._held.append(out)
                self._held_samples += out.shape[0]

    def end(self) -> None:
        if self.done or self._ended:
            return
        self._ended = True
        tail = self._fit(self._resampler.flush())
        if tail.shape[0]:
            self._held.append(tail)
            self._held_samples += tail.shape[0]
        if self._sink._is_sending(self):
            self._sink._pump()

    def _fit(self, audio: Int16Array) -> Int16Array:
        """What of `audio` fits in the sink's audio-ahead budget (the rest is dropped)."""
        sink = self._sink
        out, self._dropped = fit_ahead(
            audio, sink._ahead(), sink.max_ahead_samples, self.id, self._dropped
        )
        return out

    # ------------------------------------------------------------------ sending

    def _send_frames(self, audio: Int16Array) -> None:
        sink = self._sink
        for frame in self._chunker.push(audio):
            sink._outbox.send(media_message(sink.stream_sid, ulaw_encode(frame)))
            self._sent += frame.shape[0]
            if self._sent == TWILIO_FRAME_BYTES or (
                self._sent - self._last_mark_at >= sink._mark_interval
            ):
                self._mark(end=False)

    def _drain_held(self) -> None:
        held, self._held = self._held, []
        self._held_samples = 0
        for audio in held:
            self._send_frames(audio)

    def _send_end(self) -> None:
        """Final flush (the only frame allowed to be short) and the end mark."""
        sink = self._sink
        rest = self._chunker.flush()
        if rest is not None and rest.shape[0]:
            sink._outbox.send(media_message(sink.stream_sid, ulaw_encode(rest)))
            self._sent += rest.shape[0]
        self._mark(end=True)
        self._end_sent = True

    def _mark(self, *, end: bool) -> None:
        sink = self._sink
        self._marks += 1
        name = f"v{sink._generation}.{self._index}.{self._marks}"
        idle = not sink._marks
        sink._marks[name] = (self, self._sent, end)
        sink._outbox.send(mark_message(sink.stream_sid, name))
        self._last_mark_at = self._sent
        sink._watch_marks(idle)

    def _finish(self, status: PlayoutStatus, now: float) -> None:
        if status is PlayoutStatus.FULL and self._dropped:
            status = PlayoutStatus.PARTIAL  # audio over the budget was never heard
        self._held.clear()
        self._held_samples = 0
        self._conclude(status, self.played_ms, now)


class TwilioAudioSink(AudioSink):
    """AudioSink over a Twilio Media Stream (see the module docstring)."""

    def __init__(
        self,
        stream_sid: str,
        clock: Clock,
        outbox: Outbox | None = None,
        *,
        mark_interval_ms: int = 100,
        mark_timeout_s: float = 5.0,
        max_audio_ahead_s: float = DEFAULT_BUDGET.max_audio_ahead_s,
    ) -> None:
        if mark_interval_ms < 20:
            raise ValueError("mark_interval_ms must be >= 20")
        if mark_timeout_s <= 0:
            raise ValueError("mark_timeout_s must be positive")
        self.mark_timeout_s = mark_timeout_s
        self.max_ahead_samples = int(max_audio_ahead_s * TWILIO_RATE)
        self._last_ack_at = 0.0
        self._watchdog: asyncio.Task[None] | None = None
        self.stream_sid = stream_sid
        self.clock = clock
        self._outbox = outbox if outbox is not None else Outbox()
        self._mark_interval = mark_interval_ms * TWILIO_RATE // 1000
        self._segments: deque[TwilioSegment] = deque()
        self._marks: dict[str, tuple[TwilioSegment, int, bool]] = {}
        self._generation = 0
        self._count = 0
        self._closed = False
        # Counters (metrics, tests).
        self.stale_marks = 0
        self.clears = 0
        self.mark_timeouts = 0

    @property
    def outbox(self) -> Outbox:
        return self._outbox

    def _next_index(self) -> int:
        self._count += 1
        return self._count

    def _is_sending(self, seg: TwilioSegment) -> bool:
        """The first segment whose audio is not completely sent is the one on the wire."""
        for s in self._segments:
            if not s._end_sent:
                return s is seg
        return False

    def _pump(self) -> None:
        """Send what the wire order allows: finish ended segments, start the next ones."""
        for seg in self._segments:
            if seg._end_sent:
                continue
            seg._drain_held()
            if not seg._ended:
                return
            seg._send_end()

    # ------------------------------------------------------------------ AudioSink API

    def begin_segment(self, segment_id: str, sample_rate: int) -> TwilioSegment:
        if self._closed:
            raise RuntimeError("Twilio stream is closed")
        seg = TwilioSegment(self, segment_id, sample_rate)
        self._segments.append(seg)
        return seg

    def clear(self) -> None:
        if self._segments:
            self.clears += 1
            self._outbox.purge()
            if not self._closed:
                self._outbox.send(clear_message(self.stream_sid))
        self._resolve_all()

    def _resolve_all(self) -> None:
        now = self.clock.now()
        self._generation += 1
        self._marks.clear()
        segments, self._segments = self._segments, deque()
        for seg in segments:
            seg._finish(PlayoutStatus.PARTIAL if seg._acked else PlayoutStatus.SKIPPED, now)

    def _ahead(self) -> int:
        """Samples sent or held but not yet acknowledged as played."""
        return sum(s._sent - s._acked + s._held_samples for s in self._segments)

    @property
    def playing(self) -> bool:
        return any(s._sent or s._held for s in self._segments)

    @property
    def pending_segments(self) -> int:
        return len(self._segments)

    # ------------------------------------------------------------------ playback watchdog

    def _watch_marks(self, idle: bool) -> None:
        """A mark is outstanding: from now on (`idle`: none was before), silence counts."""
        if idle:
            self._last_ack_at = self.clock.now()
        if self._closed or (self._watchdog is not None and not self._watchdog.done()):
            return
        self._watchdog = asyncio.get_running_loop().create_task(
            self._watch(), name="vocalis-twilio-marks"
        )

    async def _watch(self) -> None:
        clock = self.clock
        while self._marks and not self._closed:
            deadline = self._last_ack_at + self.mark_timeout_s
            if clock.now() < deadline:
                await clock.sleep_until(deadline)
                continue
            self.mark_timeouts += 1
            log.warning(
                "twilio stream %s: no mark acknowledged for %g s; clearing playback",
                self.stream_sid,
                self.mark_timeout_s,
            )
            self.clear()
            return

    def _stop_watchdog(self) -> None:
        task, self._watchdog = self._watchdog, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def on_mark(self, name: str) -> None:
        """Twilio played everything sent before mark `name`."""
        self._last_ack_at = self.clock.now()
        entry = self._marks.pop(name, None)
        if entry is None:
            self.stale_marks += 1  # cleared generation, or not ours
            return
        seg, position, end = entry
        now = self.clock.now()
        if position > seg._acked:
            seg._acked = position
        if seg._started_at is None and position > 0:
            seg._mark_started(now - position / TWILIO_RATE)
        if end:
            # Marks come back in order, so every earlier segment is complete too.
            while self._segments:
                head = self._segments.popleft()
                head._finish(PlayoutStatus.FULL if head._acked else PlayoutStatus.SKIPPED, now)
                if head is seg:
                    break

    def connection_lost(self) -> None:
        """The socket is gone: nothing more will play; resolve from what was acknowledged."""
        self._closed = True
        self._stop_watchdog()
        self._outbox.close()
        self._resolve_all()

    async def aclose(self) -> None:
        self.clear()
        self._closed = True
        self._stop_watchdog()
