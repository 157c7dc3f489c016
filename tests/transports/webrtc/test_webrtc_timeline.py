"""The WebRTC sink's timeline and heard rule, as properties.

A random call (messages of random audio pushed in random chunks, some late so the stream
underruns, pauses, a barge-in at a random frame) is run through `OutputTimeline` frame by
frame, with the browser reporting random played positions. Whatever the draw:
- the stream is exactly the messages' audio laid out at their spans, silence elsewhere;
- messages play back to back: with its audio queued, message k+1 starts where k ended;
- `played_samples` is monotone in the position, never more than emitted;
- verdicts follow the rule: `full` = every pushed sample played, `skipped` = nothing played,
  `partial` = something played and the message was cut; the played samples are the ones
  before the reported position (concealment cannot add any: only reports move it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vocalis.transports.base import PlayoutStatus
from vocalis.transports.webrtc.timeline import (
    FRAME_SAMPLES,
    RTP_MODULUS,
    STREAM_RATE,
    OutputTimeline,
    Span,
    Verdict,
    played_samples,
    rtp_to_position,
    settle,
)

F = FRAME_SAMPLES


def _audio(n: int, length: int) -> np.ndarray:
    """Recognisable audio: message n's sample i is n * 1000 + i % 997 + 1 (never 0)."""
    return (n * 1000 + np.arange(length) % 997 + 1).astype(np.int16)


@st.composite
def spans_st(draw: st.DrawFn) -> list[Span]:
    spans = []
    stream, offset = draw(st.integers(0, 5000)), 0
    for _ in range(draw(st.integers(0, 5))):
        stream += draw(st.integers(0, 3000))  # gap: an underrun or pause
        length = draw(st.integers(1, 4000))
        spans.append(Span(stream, offset, length))
        stream += length
        offset += length
    return spans


@given(spans_st(), st.lists(st.integers(0, 40000), min_size=2, max_size=10))
def test_played_samples_is_monotone_and_bounded(spans: list[Span], positions: list[int]) -> None:
    total = sum(s.length for s in spans)
    previous = 0
    for position in sorted(positions):
        played = played_samples(spans, position)
        assert previous <= played <= total
        previous = played
    assert played_samples(spans, 0) == 0
    if spans:
        assert played_samples(spans, spans[-1].stream_end) == total
        # Inside a span: exactly the samples of that span before the position.
        first = spans[0]
        assert played_samples(spans, first.stream_start + first.length // 2) == first.length // 2


@given(
    emitted=st.integers(0, 10_000),
    fraction=st.floats(0, 1),
    complete=st.booleans(),
    stopped=st.booleans(),
)
def test_settle_rule(emitted: int, fraction: float, complete: bool, stopped: bool) -> None:
    played = int(emitted * fraction)
    outcome = settle(emitted=emitted, played=played, complete=complete, stopped=stopped)
    if outcome is PlayoutStatus.FULL:
        assert complete and emitted and played == emitted
    elif outcome is PlayoutStatus.SKIPPED:
        assert played == 0 and (stopped or (complete and not emitted))
    elif outcome is PlayoutStatus.PARTIAL:
        assert stopped and played > 0 and not (complete and played == emitted)
    else:
        assert not stopped and not (complete and (played == emitted or not emitted))


@dataclass
class Message:
    n: int
    audio: np.ndarray
    pushed: int = 0
    ended: bool = False
    verdict: Verdict | None = None
    started: bool = False


@dataclass
class Call:
    timeline: OutputTimeline = field(default_factory=OutputTimeline)
    stream: list[np.ndarray] = field(default_factory=list)
    messages: dict[int, Message] = field(default_factory=dict)
    spans: dict[int, tuple[Span, ...]] = field(default_factory=dict)

    def frame(self) -> None:
        self.stream.append(self.timeline.next_frame().copy())
        for m in self.messages.values():
            if m.verdict is None:
                self.spans[m.n] = self.timeline.spans(m.n)

    def resolve(self, verdicts: list[Verdict]) -> None:
        for v in verdicts:
            assert self.messages[v.n].verdict is None, "one verdict per message"
            self.messages[v.n].verdict = v

    def report(self, position: int) -> None:
        effects = self.timeline.report(position)
        for n in effects.started:
            self.messages[n].started = True
        self.resolve(effects.resolved)


@st.composite
def calls(draw: st.DrawFn) -> tuple[list[tuple[str, int]], int]:
    """A script of (action, argument) steps and the number of messages."""
    n = draw(st.integers(1, 4))
    steps: list[tuple[str, int]] = []
    for k in range(1, n + 1):
        steps.append(("open", k))
    actions = ["push", "push", "frame", "frame", "report", "end", "pause", "resume"]
    for _ in range(draw(st.integers(5, 60))):
        steps.append((draw(st.sampled_from(actions)), 0))
    if draw(st.booleans()):
        steps.append(("clear", 0))
    return steps, n


@settings(max_examples=300, deadline=None)
@given(calls(), st.data())
def test_random_call_keeps_the_heard_rule(
    script: tuple[list[tuple[str, int]], int], data: st.DataObject
) -> None:
    steps, _count = script
    call = Call()
    tl = call.timeline
    lengths = {k: data.draw(st.integers(0, 3 * F), label=f"len{k}") for k in range(1, 5)}
    cleared = False
    for action, arg in steps:
        open_ = [m for m in call.messages.values() if not m.ended]
        if action == "open":
            tl.open(arg)
            call.messages[arg] = Message(arg, _audio(arg, lengths[arg]))
        elif action == "push" and open_ and not cleared:
            m = open_[0]
            size = data.draw(st.integers(1, 1500), label="chunk")
            chunk = m.audio[m.pushed : m.pushed + size]
            m.pushed += chunk.shape[0]
            assert tl.push(m.n, chunk)
        elif action == "end" and open_ and not cleared:
            m = open_[0]
            tail = m.audio[m.pushed :]
            m.pushed += tail.shape[0]
            tl.push(m.n, tail)
            tl.end(m.n)
            m.ended = True
        elif action == "frame":
            call.frame()
        elif action == "report":
            call.report(data.draw(st.integers(0, tl.position), label="pos"))
        elif action == "pause":
            tl.paused = True
        elif action == "resume":
            tl.paused = False
        elif action == "clear" and not cleared:
            stop_at = tl.stop()
            cleared = True
            # Every later frame is silence.
            call.frame()
            assert not call.stream[-1].any() and tl.position == stop_at + F
            effects = tl.finish(data.draw(st.integers(0, tl.position), label="cleared"))
            for n in effects.started:
                call.messages[n].started = True
            call.resolve(effects.resolved)
    if not cleared:
        # The caller keeps listening: the rest is played and reported to the end.
        tl.paused = False
        for m in call.messages.values():
            if not m.ended:
                tl.push(m.n, m.audio[m.pushed :])
                m.pushed = m.audio.shape[0]
                tl.end(m.n)
                m.ended = True
        for _ in range(4 * 4 * 3 + 2):
            call.frame()
        call.report(tl.position)
    _check(call, cleared)


def _check(call: Call, cleared: bool) -> None:
    stream = np.concatenate(call.stream) if call.stream else np.zeros(0, np.int16)
    covered = np.zeros(stream.shape[0], dtype=bool)
    final = call.timeline.played_position
    for m in call.messages.values():
        spans = call.spans.get(m.n, ())
        offset = 0
        for span in spans:
            assert span.offset == offset
            got = stream[span.stream_start : span.stream_end]
            assert np.array_equal(got, m.audio[span.offset : span.offset + span.length])
            assert not covered[span.stream_start : span.stream_end].any()
            covered[span.stream_start : span.stream_end] = True
            offset += span.length
        v = m.verdict
        assert v is not None, f"message {m.n} never resolved"
        assert v.played == played_samples(spans, final) or v.outcome is PlayoutStatus.SKIPPED
        if v.outcome is PlayoutStatus.FULL:
            assert m.ended and v.played == offset == m.audio.shape[0] > 0
        elif v.outcome is PlayoutStatus.SKIPPED:
            assert v.played == 0
        else:
            assert cleared and 0 < v.played <= offset
        assert m.started == (v.played > 0)
    assert not stream[~covered].any(), "audio outside every span"
    if not cleared:
        _check_back_to_back(call)


def _check_back_to_back(call: Call) -> None:
    """With the remaining audio queued up front, each message starts where the last ended."""
    ordered = [call.spans.get(n, ()) for n in sorted(call.messages)]
    last_spans = [s[-1] for s in ordered if s]
    firsts = [s[0] for s in ordered if s]
    for previous, first in zip(last_spans, firsts[1:], strict=False):
        assert first.stream_start >= previous.stream_end


def test_back_to_back_in_one_frame() -> None:
    """Message 2 starts in the same frame, at the sample after message 1's last one."""
    tl = OutputTimeline()
    tl.open(1)
    tl.open(2)
    tl.push(1, _audio(1, 1000))
    tl.end(1)
    tl.push(2, _audio(2, 2000))
    tl.end(2)
    stream = np.concatenate([tl.next_frame().copy() for _ in range(4)])
    assert np.array_equal(stream[:1000], _audio(1, 1000))
    assert np.array_equal(stream[1000:3000], _audio(2, 2000))
    assert tl.spans(2) == (Span(1000, 0, 2000),)
    effects = tl.report(1500)
    assert effects.started == [1, 2]
    assert [(v.n, v.outcome, v.played) for v in effects.resolved] == [(1, PlayoutStatus.FULL, 1000)]
    assert tl.played(2) == 500


def test_underrun_gap_is_not_heard() -> None:
    """A late chunk leaves silence inside the message; a stop inside the gap counts only the
    audio before it, and the audio after the gap is placed after it."""
    tl = OutputTimeline()
    tl.open(1)
    tl.push(1, _audio(1, F + 100))
    tl.next_frame()
    tl.next_frame()  # 100 samples, then starved
    assert tl.underruns == 1
    tl.next_frame()  # all silence, still starved
    tl.push(1, _audio(1, 2 * F)[F + 100 :])
    tl.next_frame()
    assert tl.spans(1) == (Span(0, 0, F + 100), Span(3 * F, F + 100, F - 100))
    tl.report(2 * F + 500)  # a position inside the gap
    assert tl.played(1) == F + 100
    tl.stop()
    [verdict] = tl.finish().resolved
    assert verdict == Verdict(1, PlayoutStatus.PARTIAL, F + 100)


def test_stop_drops_queued_audio_and_later_pushes() -> None:
    tl = OutputTimeline()
    tl.open(1)
    tl.open(2)
    tl.push(1, _audio(1, 3 * F))
    tl.next_frame()
    at = tl.stop()
    assert at == F and not tl.push(1, _audio(1, 10)) and not tl.next_frame().any()
    verdicts = tl.finish(F // 2).resolved
    assert verdicts == [
        Verdict(1, PlayoutStatus.PARTIAL, F // 2),
        Verdict(2, PlayoutStatus.SKIPPED, 0),
    ]
    assert tl.pending == 0


@given(
    origin=st.integers(0, RTP_MODULUS - 1),
    emitted=st.integers(0, 10**9),
    behind=st.integers(-5 * F, 10**6),
)
def test_rtp_to_position_across_the_wrap(origin: int, emitted: int, behind: int) -> None:
    """A recent timestamp maps back to its position; a future or too old one is refused."""
    max_lag = 10 * STREAM_RATE
    position = emitted - behind
    rtp = (origin + position) % RTP_MODULUS
    got = rtp_to_position(rtp, origin=origin, emitted=emitted, max_lag=max_lag)
    if 0 <= behind <= min(emitted, max_lag):
        assert got == position
    else:
        assert got is None
    assert rtp_to_position(RTP_MODULUS, origin=origin, emitted=emitted, max_lag=max_lag) is None
