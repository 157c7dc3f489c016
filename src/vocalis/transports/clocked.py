"""An audio sink whose playback position comes from a `Clock`.

Why it exists: the heard contract needs, per output segment, how much audio was *played*, not
how much was received. A real sound card consumes audio at a fixed pace; this sink models one.
A player task takes exactly one frame (`frame_ms`) from the queued segments per `frame_ms` of
clock time, so every segment's `played_ms` is the sum of the frames that went out — under a
`ManualClock` that number is exact and tests can assert it to the sample.

Semantics (the model of a device buffer of one frame):

- A frame counts as played when its tick fires (the sample data is "in the device"). A
  `clear()` in the middle of a frame therefore counts that whole frame as played: the error is
  below one frame, and the optional frame callback (the "as played" recording) always agrees
  with `played_ms` exactly.
- Segments play back to back: one frame may hold the tail of segment 1 and the head of
  segment 2. `started` of each segment resolves with the clock time of its first sample.
- A segment resolves `full` at the tick after its last sample went out (its audio has finished
  playing); `ended_at` is the exact time of its last sample's end.
- An *underrun* is a tick where the playing segment (already started, not ended) has not
  enough audio queued: the missing part is silence, the segment position does not advance and
  `underruns` counts the tick. A segment that has not started yet does not tick at all: the
  player sleeps until audio (or `end()` / `clear()`) arrives, then starts a fresh timeline.
- The timeline is the clock, not the player task: ticks due by `clock.now()` are played in
  order even if the task runs late (event-loop stall, a `ManualClock` advanced in one big
  step); `clear()` and `sync()` catch up first, so positions always reflect `clock.now()`.
- `pause()` holds the device: no ticks, positions frozen, pushes still queue; `resume()` starts
  a fresh timeline at the moment it is called (the paused time is not played); `clear()` ends it.
- `clear()`: every pending segment resolves at once — `partial(played_ms)` if any of it
  played (or `full` if everything pushed had already gone out and it was ended), `skipped`
  otherwise. Audio pushed into a resolved segment is dropped silently (providers keep sending
  deltas for a moment after a barge-in).

Hot path: per frame the player does slicing (views) and integer bookkeeping only; no copies,
no logging, no per-frame objects besides the numpy views handed to the callback. On the real
clock (`MonotonicClock`) sinks have no task of their own: one shared frame timer per event loop
plays every due frame of every sink (`ticker.py`), so a frame may be handed over up to one
frame after its tick — positions are the timeline's, exact as before.

Lazy playback: a sink with no frame callback hands nothing to anyone per frame, so while its
head segment has whole frames queued nothing observable happens until they run out. Such a sink
plays those frames in one step (`_play_run`: one slice of bookkeeping, the same state the
frames would leave one by one) and sleeps until the head's audio runs out — on the shared
ticker (`SharedTicker.sleep_until`) or in its own task. Every reader catches up first:
`played_ms` and `frames_played` from the clock, `clear()`/`pause()`/`sync()` as before, so a
barge-in at any instant sees the position of every frame due by then.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable

import numpy as np

from vocalis.audio.frame import Int16Array
from vocalis.audio.resample import StreamResampler
from vocalis.transports.base import AudioSink, OutputSegment, PlayoutStatus
from vocalis.transports.ticker import SharedTicker, shared_ticker
from vocalis.utils.clock import Clock, MonotonicClock
from vocalis.utils.flag import Flag

__all__ = ["ClockedAudioSink", "ClockedSegment", "FrameCallback"]

# Called for every played piece of audio: (samples at the sink rate, segment id, clock time of
# the piece's first sample). A frame that spans two segments yields two calls.
FrameCallback = Callable[[Int16Array, str, float], None]

# Ticks are computed as anchor + k * frame; a tiny slack absorbs float drift of clocks that
# are advanced in many small steps (ManualClock.advance(0.02) fifty times != 1.0 exactly).
_TICK_SLACK_S = 1e-9


class ClockedSegment(OutputSegment):
    """One message's audio queued in a `ClockedAudioSink`."""

    def __init__(self, sink: ClockedAudioSink, segment_id: str, sample_rate: int) -> None:
        super().__init__(segment_id, sample_rate)
        self._sink = sink
        self._chunks: deque[Int16Array] = deque()
        self._offset = 0  # samples of _chunks[0] already played
        self._queued = 0  # samples (sink rate) waiting to play
        self._played = 0  # samples (sink rate) played
        self._last_end: float | None = None  # clock time where the last played sample ends
        # Passes audio through untouched when the rates are equal.
        self._resampler = StreamResampler(sample_rate, sink.sample_rate)

    # ------------------------------------------------------------------ producer side

    def push(self, samples: np.ndarray) -> None:
        if not self._accept(samples):
            return
        samples = self._resampler.push(samples)
        if samples.shape[0]:
            self._chunks.append(samples)
            self._queued += samples.shape[0]
            self._sink._wake()

    def end(self) -> None:
        if self.done or self._ended:
            return
        tail = self._resampler.flush()
        if tail.shape[0]:
            self._chunks.append(tail)
            self._queued += tail.shape[0]
        self._ended = True
        self._sink._wake()

    # ------------------------------------------------------------------ introspection

    @property
    def played_ms(self) -> float:
        sink = self._sink
        if sink.on_frame is None and self._started_at is not None:
            sink._catch_up(self)  # a lazy sink advances on demand: exact at this instant
        return self._played * 1000.0 / sink.sample_rate

    # ------------------------------------------------------------------ player side

    def _take(self, n: int) -> Int16Array:
        """Next up to `n` queued samples as a view of one pushed chunk."""
        chunk = self._chunks[0]
        start = self._offset
        stop = min(start + n, chunk.shape[0])
        piece = chunk[start:stop]
        if stop == chunk.shape[0]:
            self._chunks.popleft()
            self._offset = 0
        else:
            self._offset = stop
        taken = stop - start
        self._queued -= taken
        self._played += taken
        return piece

    def _skip(self, n: int) -> None:
        """Play the next `n` queued samples (`n <= _queued`) without handing them out."""
        chunks = self._chunks
        offset = self._offset + n
        while offset and offset >= chunks[0].shape[0]:
            offset -= chunks.popleft().shape[0]
        self._offset = offset
        self._queued -= n
        self._played += n

    def _finish(self, status: PlayoutStatus, now: float) -> None:
        self._chunks.clear()
        self._queued = 0
        ended_at = self._last_end if status is PlayoutStatus.FULL else now
        self._conclude(status, self.played_ms, ended_at)


class ClockedAudioSink(AudioSink):
    """Plays segments back to back at real-time pace on `clock` (see the module docstring).

    `on_frame` receives every played piece as it goes out; used to record the agent channel
    "as played". It runs on the player task and must be cheap and must not raise.
    """

    # On the real clock, tick with the loop's shared frame timer (a frame may then go out up
    # to one frame late). False for a sink feeding a device that must get each frame on time.
    share_ticker: bool = True

    def __init__(
        self,
        clock: Clock,
        sample_rate: int = 24000,
        frame_ms: int = 20,
        *,
        on_frame: FrameCallback | None = None,
    ) -> None:
        if sample_rate <= 0 or frame_ms <= 0:
            raise ValueError("sample_rate and frame_ms must be positive")
        if (sample_rate * frame_ms) % 1000:
            raise ValueError(f"{frame_ms} ms is not a whole number of samples at {sample_rate} Hz")
        self.clock = clock
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self.frame_samples = sample_rate * frame_ms // 1000
        self.on_frame = on_frame
        self._frame_s = frame_ms / 1000.0
        self._segments: list[ClockedSegment] = []  # a few: not a 760 B deque (#17)
        # The device timeline: ticks at anchor + k * frame while active, None while idle.
        self._anchor = 0.0
        self._k = 0
        self._next_tick: float | None = None
        self._wake_event = Flag()
        self._task: asyncio.Task[None] | None = None
        # Real-time sinks share one frame timer per loop (`ticker.py`); others own a task.
        self._ticker: SharedTicker | None = None
        self._shared = self.share_ticker and type(clock) is MonotonicClock
        self._closed = False
        self._paused = False
        self._error: BaseException | None = None
        # Counters (read by metrics and tests).
        self.underruns = 0
        self._frames_played = 0

    # ------------------------------------------------------------------ AudioSink API

    def begin_segment(self, segment_id: str, sample_rate: int) -> ClockedSegment:
        if self._closed:
            raise RuntimeError("ClockedAudioSink is closed")
        if self._error is not None:
            raise RuntimeError("ClockedAudioSink player failed") from self._error
        seg = ClockedSegment(self, segment_id, sample_rate)
        self._segments.append(seg)
        if self._shared:
            if self._ticker is None:
                self._ticker = shared_ticker(self._frame_s)
        elif self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="vocalis-clocked-sink"
            )
        self._wake()
        return seg

    def clear(self) -> None:
        now = self.clock.now()
        # Frames whose tick is due went out even if the player task has not run yet.
        self._advance_to(now)
        self._paused = False
        segments = self._segments
        self._segments = []
        for seg in segments:
            if seg._played == 0:
                seg._finish(PlayoutStatus.SKIPPED, now)
            elif seg._ended and seg._queued == 0:
                seg._finish(PlayoutStatus.FULL, now)
            else:
                seg._finish(PlayoutStatus.PARTIAL, now)
        # A lazy sink asleep until its old head ran out must see the next segment on time.
        if self._ticker is not None and self._next_tick is not None:
            self._ticker.add(self)
        self._wake_event.set()

    @property
    def frames_played(self) -> int:
        """Frames handed to the device so far (due by now, on a lazy sink)."""
        if self.on_frame is None and self._segments:
            self._catch_up(self._segments[0])
        return self._frames_played

    @property
    def playing(self) -> bool:
        return any(seg._queued > 0 or seg._played > 0 for seg in self._segments)

    @property
    def pending_segments(self) -> int:
        return len(self._segments)

    @property
    def can_pause(self) -> bool:
        return True

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        if self._paused:
            return
        self._advance_to(self.clock.now())  # frames due by now went out
        self._paused = True
        self._next_tick = None

    def resume(self) -> None:
        if not self._paused:
            return
        self._paused = False
        self._wake()

    def sync(self) -> None:
        """Play every frame that is due by `clock.now()` (positions are then exact now)."""
        self._advance_to(self.clock.now())

    async def aclose(self) -> None:
        self._closed = True
        self.clear()
        if self._ticker is not None:
            self._ticker.discard(self)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                # Our own cancellation of the player; re-raise only if *we* are cancelled.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
        if self._error is not None:
            raise RuntimeError("ClockedAudioSink player failed") from self._error

    # ------------------------------------------------------------------ player

    def _head_ready(self) -> bool:
        """Whether the head segment needs ticks (else the device idles until woken)."""
        if not self._segments:
            return False
        head = self._segments[0]
        return head._queued > 0 or head._played > 0 or head._ended

    def _wake(self) -> None:
        if self._next_tick is None and not self._paused and self._head_ready():
            # Start a fresh device timeline at the moment audio became available.
            self._anchor = self.clock.now()
            self._k = 0
            self._next_tick = self._anchor
            if self._ticker is not None:
                # The first frame is due now: play it on the next loop turn (as the task
                # would), the rest on the shared ticks.
                asyncio.get_running_loop().call_soon(self._first_tick)
                self._ticker.add(self)
            else:
                self._wake_event.set()

    def _first_tick(self) -> None:
        if not self._closed:
            self.on_shared_tick(self.clock.now())

    def on_shared_tick(self, now: float) -> bool:
        """Shared-ticker step: play every frame due by `now`; False once idle (or failed)."""
        self._advance_to(now)
        if self._error is not None:
            self.clear()  # resolve every waiter; aclose() re-raises the error
            return False
        if self._next_tick is None:
            return False
        if self.on_frame is None and self._ticker is not None:  # lazy: sleep through the run
            until = self._run_end()
            if until > self._next_tick:
                self._ticker.sleep_until(self, until - _TICK_SLACK_S)
                return False
        return True

    def _run_end(self) -> float:
        """When the next tick that must run frame by frame is due (`_next_tick` is set).

        For a lazy sink (no frame callback) whose head has started, that is the tick after the
        head's whole frames run out (its end, a segment boundary or a starved frame);
        otherwise the next tick (a head's first frame resolves `started` on time)."""
        head = self._segments[0] if self._segments else None
        if head is None or self.on_frame is not None or head._started_at is None:
            return self._next_tick  # type: ignore[return-value]
        run = head._queued // self.frame_samples
        if not run:
            return self._next_tick  # type: ignore[return-value]
        return self._anchor + (self._k + run) * self._frame_s

    def _catch_up(self, seg: ClockedSegment) -> None:
        """A reader's view of a lazy sink: the head's whole frames due by now are played."""
        segments = self._segments
        if segments and segments[0] is seg and seg._started_at is not None:
            self._play_run(self.clock.now())

    def _play_run(self, now: float) -> bool:
        """Every tick due by `now` whose frame lies wholly in the head's queued audio, at once.

        Only for a sink without a frame callback: such frames are exactly `frame_samples`
        taken from the head, no underrun, no segment resolved, so the state they leave is the
        same whether they are played one by one or in one step. False if none was due."""
        if not self._segments or self._next_tick is None:
            return False
        head = self._segments[0]
        run = head._queued // self.frame_samples
        if not run:
            return False
        anchor, k, frame_s = self._anchor, self._k, self._frame_s
        limit = now + _TICK_SLACK_S
        due = max(0, math.floor((limit - anchor) / frame_s) - k + 1)
        # The same float test as the frame-by-frame loop decides every tick's membership.
        while due and anchor + (k + due - 1) * frame_s > limit:
            due -= 1
        while anchor + (k + due) * frame_s <= limit:
            due += 1
        n = min(due, run)
        if not n:
            return False
        if head._started_at is None:
            head._mark_started(self._next_tick)
        head._skip(n * self.frame_samples)
        self._k = k = k + n
        head._last_end = anchor + (k - 1) * frame_s + self.frame_samples / self.sample_rate
        self._frames_played += n
        self._next_tick = anchor + k * frame_s
        return True

    def _advance_to(self, now: float) -> None:
        """Play every tick due by `now`, in order (synchronous catch-up)."""
        try:
            while self._next_tick is not None and self._next_tick <= now + _TICK_SLACK_S:
                if self.on_frame is None and self._play_run(now):
                    continue
                if self._play_frame(self._next_tick):
                    self._k += 1
                    self._next_tick = self._anchor + self._k * self._frame_s
                else:
                    self._next_tick = None
        except Exception as exc:  # a failing frame callback must not hang waiters
            self._error = exc
            self._next_tick = None
            self._wake_event.set()

    async def _run(self) -> None:
        clock = self.clock
        wake = self._wake_event
        while self._error is None:
            deadline = self._next_tick
            if deadline is None:
                wake.clear()
                await wake.wait()
                continue
            until = self._run_end()
            if until > deadline:
                await self._sleep_run(until - _TICK_SLACK_S)
            else:
                await clock.sleep_until(deadline - _TICK_SLACK_S)
            self._advance_to(clock.now())
        # The player failed: resolve every waiter; aclose() re-raises the error.
        self.clear()

    async def _sleep_run(self, until: float) -> None:
        """A lazy sink's sleep to the end of its run, cut short when a new timeline starts
        (after `clear()` or `pause()`, which stop the current one)."""
        self._wake_event.clear()
        loop = asyncio.get_running_loop()
        sleeper = loop.create_task(self.clock.sleep_until(until))
        woken = loop.create_task(self._wake_event.wait())
        try:
            await asyncio.wait((sleeper, woken), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            woken.cancel()

    def _play_frame(self, tick: float) -> bool:
        """Resolve finished segments, then send one frame. False when there is nothing to tick."""
        segments = self._segments
        # 1. Segments whose last sample went out during the previous frame are now complete.
        while segments:
            head = segments[0]
            if head._queued:
                break
            if head._ended:
                segments.pop(0)
                head._finish(PlayoutStatus.FULL if head._played else PlayoutStatus.SKIPPED, tick)
            elif head._played:
                break  # started and starving: an underrun below
            else:
                return False  # nothing to play yet and not started: no ticking, no underrun
        else:
            return False
        need = self.frame_samples
        chunk = head._chunks[0] if head._queued else None
        if chunk is not None and head._offset + need <= chunk.shape[0]:
            # The common frame: inside one pushed chunk of the head segment. The same steps
            # as the general fill below, without its loops (this runs per sink per frame).
            if head._started_at is None:
                head._mark_started(tick)
            piece = head._take(need)
            head._last_end = tick + need / self.sample_rate
            if self.on_frame is not None:
                self.on_frame(piece, head.id, tick)
            self._frames_played += 1
            return True
        return self._fill_frame(tick, need)

    def _fill_frame(self, tick: float, need: int) -> bool:
        """A frame across chunks or segments, or short of audio (see `_play_frame`)."""
        segments = self._segments
        rate = self.sample_rate
        on_frame = self.on_frame
        # 2. Fill one frame from the queue, back to back across segments.
        pos = 0
        for seg in segments:
            while need and seg._queued:
                t = tick + pos / rate
                if seg._started_at is None:
                    seg._mark_started(t)
                piece = seg._take(need)
                n = piece.shape[0]
                pos += n
                need -= n
                seg._last_end = tick + pos / rate
                if on_frame is not None:
                    on_frame(piece, seg.id, t)
            if need == 0 or not seg._ended:
                break
        if need:
            # The frame is short. It is an underrun when a segment that already started is
            # still open and starving; a gap before a not-yet-started segment is not.
            for seg in segments:
                if not (seg._ended and seg._queued == 0):
                    if seg._played:
                        self.underruns += 1
                    break
        if pos:
            self._frames_played += 1
        return True
