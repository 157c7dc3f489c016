"""The outbound stream's timeline and the heard rule of the WebRTC sink. Sans-I/O.

Why it exists: over WebRTC the server sends one continuous audio stream (Opus, 20 ms frames at
48 kHz, silence between messages), and the browser can only tell *where in that stream* its
playout is — the RTP timestamp of the last frame it played from a received packet. Turning that
one number into `full / partial(ms) / skipped` per message needs a record of which stream
samples carried which message's audio: a message can start mid-frame right after the previous
one, stall in an underrun (silence inside its own timeline) or be held by `pause()`. This
module keeps that record (`Span`s), fills the frames, and applies the rule; the asyncio sink
only moves data in and out. No clock, no asyncio: every decision is a pure function of the
positions it is given, so the rule is property-tested.

Positions are stream samples at `STREAM_RATE` since the first frame the track emitted. A played
position `p` means "every stream sample before `p` that came from a received packet has been
played". Concealment (the receiver inventing audio for lost or late packets) never moves it,
because the browser only reports timestamps of frames decoded from real packets; a lost packet
inside the heard range is a gap the caller did not hear, but the position after it is still
the true stop position of the message (what a truncate needs).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from vocalis.audio.frame import Int16Array
from vocalis.transports.base import PlayoutStatus

__all__ = [
    "FRAME_SAMPLES",
    "RTP_MODULUS",
    "STREAM_RATE",
    "OutputTimeline",
    "Span",
    "played_samples",
    "rtp_to_position",
    "settle",
]

STREAM_RATE = 48000  # Opus' clock rate: the RTP timestamp unit of the stream
FRAME_SAMPLES = 960  # 20 ms, one Opus packet
RTP_MODULUS = 1 << 32  # RTP timestamps are 32-bit and wrap (every 24.8 hours at 48 kHz)


@dataclass(frozen=True, slots=True)
class Span:
    """A run of one message's audio on the stream: `length` samples of its own audio, from its
    own sample `offset`, occupying stream samples `[stream_start, stream_start + length)`."""

    stream_start: int
    offset: int
    length: int

    @property
    def stream_end(self) -> int:
        return self.stream_start + self.length


def played_samples(spans: Sequence[Span], position: int) -> int:
    """How much of a message's own audio lies before stream `position` (its played samples).

    `spans` are the message's runs in stream order (offsets contiguous). A position inside an
    underrun or pause gap counts the audio before the gap; a position past the last span
    counts everything emitted.
    """
    for span in reversed(spans):
        if span.stream_start < position:
            return span.offset + min(span.length, position - span.stream_start)
    return 0


def rtp_to_position(rtp: int, *, origin: int, emitted: int, max_lag: int) -> int | None:
    """Stream position of RTP timestamp `rtp` (origin = timestamp of stream sample 0).

    `emitted` is the stream position sent so far; a timestamp ahead of it, or more than
    `max_lag` samples behind it (a stale or forged report), gives None. Correct across the
    32-bit wrap.
    """
    if not 0 <= rtp < RTP_MODULUS:
        return None
    behind = (origin + emitted - rtp) % RTP_MODULUS
    if behind > min(emitted, max_lag):
        return None
    return emitted - behind


def settle(*, emitted: int, played: int, complete: bool, stopped: bool) -> PlayoutStatus | None:
    """The heard rule for one message.

    `emitted`: its samples put on the stream; `played`: those before the played position
    (≤ `emitted`); `complete`: it was ended and everything pushed was emitted; `stopped`: it
    will get no further reports (barge-in answered or timed out, connection lost, close).

    - `full` once a complete message has played everything it emitted (and emitted something);
    - otherwise, when stopped: `skipped` if nothing played, else `partial`;
    - otherwise it is still pending (`None`).
    """
    if not 0 <= played <= emitted:
        raise ValueError(f"played {played} outside 0..{emitted}")
    if complete and emitted and played == emitted:
        return PlayoutStatus.FULL
    if complete and not emitted:
        return PlayoutStatus.SKIPPED  # an empty message: nothing could be heard
    if not stopped:
        return None
    return PlayoutStatus.PARTIAL if played else PlayoutStatus.SKIPPED


@dataclass(slots=True)
class _Segment:
    n: int
    chunks: deque[Int16Array] = field(default_factory=deque)
    head: int = 0  # samples of chunks[0] already emitted
    queued: int = 0
    ended: bool = False
    emitted: int = 0
    spans: list[Span] = field(default_factory=list)
    played: int = 0
    started: bool = False
    dropped: bool = False  # stopped before all its audio was emitted

    @property
    def complete(self) -> bool:
        """Ended, and every sample pushed went onto the stream."""
        return self.ended and self.queued == 0 and not self.dropped


@dataclass(frozen=True, slots=True)
class Verdict:
    """A message that just resolved: its number, outcome and played samples (stream rate)."""

    n: int
    outcome: PlayoutStatus
    played: int


@dataclass(slots=True)
class ReportEffects:
    """What one played-position report changed: messages whose first sample has now played,
    and messages that resolved (`full`, or an empty one)."""

    started: list[int] = field(default_factory=list)
    resolved: list[Verdict] = field(default_factory=list)


class OutputTimeline:
    """The stream's frames and the messages in them, in order, back to back.

    `next_frame()` is called once per 20 ms by the track that feeds the encoder: it takes the
    next `FRAME_SAMPLES` from the head message (crossing into the next one mid-frame when the
    head is complete), and emits silence when nothing is queued, while paused, or in an
    underrun. `report()` applies the browser's played position; `stop()` is the barge-in.
    """

    def __init__(self, frame_samples: int = FRAME_SAMPLES) -> None:
        if frame_samples <= 0:
            raise ValueError("frame_samples must be positive")
        self.frame_samples = frame_samples
        self.position = 0  # stream samples emitted so far
        self.played_position = 0  # highest played position reported
        self.paused = False
        self.underruns = 0
        self._playing: dict[int, _Segment] = {}  # in order; may still emit
        self._stopping: dict[int, _Segment] = {}  # cleared: awaiting their final position
        self._silence = np.zeros(frame_samples, dtype=np.int16)
        self._silence.flags.writeable = False

    # ---------------------------------------------------------------- messages in

    def open(self, n: int) -> None:
        if n in self._playing or n in self._stopping:
            raise ValueError(f"message {n} is already open")
        self._playing[n] = _Segment(n)

    def push(self, n: int, samples: Int16Array) -> bool:
        """Queue audio of message n; False when it was cleared (late audio is dropped)."""
        seg = self._playing.get(n)
        if seg is None or seg.ended:
            return False
        if samples.shape[0]:
            seg.chunks.append(samples)
            seg.queued += samples.shape[0]
        return True

    def end(self, n: int) -> None:
        seg = self._playing.get(n)
        if seg is not None:
            seg.ended = True

    def emitted(self, n: int) -> int:
        seg = self._playing.get(n) or self._stopping.get(n)
        return 0 if seg is None else seg.emitted

    def played(self, n: int) -> int:
        seg = self._playing.get(n) or self._stopping.get(n)
        return 0 if seg is None else seg.played

    def accepting(self, n: int) -> bool:
        """Message n is open for audio (not ended, not cleared, not resolved)."""
        seg = self._playing.get(n)
        return seg is not None and not seg.ended

    def first_sample(self, n: int) -> int | None:
        """Stream position of message n's first sample, once it is on the stream."""
        seg = self._playing.get(n) or self._stopping.get(n)
        return seg.spans[0].stream_start if seg is not None and seg.spans else None

    def spans(self, n: int) -> tuple[Span, ...]:
        """Where message n's audio went on the stream (empty once it resolved)."""
        seg = self._playing.get(n) or self._stopping.get(n)
        return () if seg is None else tuple(seg.spans)

    @property
    def holding_audio(self) -> bool:
        """Some message has audio emitted or queued that is not resolved yet."""
        return any(s.emitted or s.queued for s in self._playing.values())

    @property
    def pending(self) -> int:
        return len(self._playing) + len(self._stopping)

    # ---------------------------------------------------------------- frames out

    def next_frame(self) -> Int16Array:
        """The next frame of the stream. Silence is one shared read-only array: callers copy
        (or encode) a frame, never write into it."""
        if self.paused or not self._playing:
            self.position += self.frame_samples
            return self._silence
        out: Int16Array | None = None
        filled = 0
        for seg in self._playing.values():
            if filled == self.frame_samples:
                break
            if seg.queued:
                if out is None:
                    out = np.zeros(self.frame_samples, dtype=np.int16)
                filled = self._take(seg, out, filled)
            if not seg.complete:
                if filled < self.frame_samples and seg.emitted:
                    self.underruns += 1  # started, audio late: silence inside its timeline
                break
            # complete: the next message follows in the same frame, without a gap
        self.position += self.frame_samples
        return self._silence if out is None else out

    def _take(self, seg: _Segment, out: Int16Array, filled: int) -> int:
        """Copy up to the free part of `out` from `seg`, recording the span; new fill level."""
        start = filled
        while seg.chunks and filled < out.shape[0]:
            chunk = seg.chunks[0]
            take = min(chunk.shape[0] - seg.head, out.shape[0] - filled)
            out[filled : filled + take] = chunk[seg.head : seg.head + take]
            filled += take
            seg.head += take
            if seg.head == chunk.shape[0]:
                seg.chunks.popleft()
                seg.head = 0
        taken = filled - start
        seg.queued -= taken
        stream_start = self.position + start
        last = seg.spans[-1] if seg.spans else None
        if last is not None and last.stream_end == stream_start:
            seg.spans[-1] = Span(last.stream_start, last.offset, last.length + taken)
        else:
            seg.spans.append(Span(stream_start, seg.emitted, taken))
        seg.emitted += taken
        return filled

    # ---------------------------------------------------------------- reports in

    def report(self, position: int) -> ReportEffects:
        """The browser has played the stream up to `position` (stale reports change nothing)."""
        effects = ReportEffects()
        position = min(position, self.position)
        if position <= self.played_position:
            return effects
        self.played_position = position
        for seg in (*self._playing.values(), *self._stopping.values()):
            seg.played = max(seg.played, played_samples(seg.spans, position))
            if seg.played and not seg.started:
                seg.started = True
                effects.started.append(seg.n)
        for seg in list(self._playing.values()):
            outcome = settle(
                emitted=seg.emitted, played=seg.played, complete=seg.complete, stopped=False
            )
            if outcome is not None:
                del self._playing[seg.n]
                effects.resolved.append(Verdict(seg.n, outcome, seg.played))
        return effects

    def stop(self) -> int:
        """Barge-in: nothing more is emitted for any open message; returns the stream position
        where their audio stops (every later frame is silence). They resolve with `finish()`."""
        for seg in self._playing.values():
            seg.dropped = seg.queued > 0 or not seg.ended
            seg.chunks.clear()
            seg.queued = 0
            seg.head = 0
        self._stopping.update(self._playing)
        self._playing = {}
        return self.position

    @property
    def stopping(self) -> bool:
        return bool(self._stopping)

    def finish(self, position: int | None = None, *, everything: bool = False) -> ReportEffects:
        """Resolve the stopped messages at `position` (default: the last reported one).

        `everything` also stops and resolves the open ones (connection lost, close).
        """
        if everything:
            self.stop()
        effects = ReportEffects() if position is None else self.report(position)
        for seg in self._stopping.values():
            outcome = settle(
                emitted=seg.emitted, played=seg.played, complete=seg.complete, stopped=True
            )
            assert outcome is not None  # stopped messages always settle
            effects.resolved.append(Verdict(seg.n, outcome, seg.played))
        self._stopping = {}
        return effects
