"""The incremental heard-word arithmetic gives exactly what the whole-text version gave.

`GrowingText` keeps a streaming message's word spans as it grows and `count_heard` counts the
heard words over them with a binary search; the reference below is the implementation they
replaced (a full rescan and a walk over every word on each call), kept verbatim so any
difference in what is released or stored shows up here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from vocalis.conversation.heard import (
    DEFAULT_MS_PER_CHAR,
    GrowingText,
    TimedWord,
    WordTiming,
    count_heard,
    heard_prefix,
    heard_word_count,
    next_heard_ms,
    word_spans,
)
from vocalis.runtime.transcript import TranscriptSync
from vocalis.transports.memory import MemoryTextSink
from vocalis.utils.clock import ManualClock

_WORD = re.compile(r"\S+")


def _reference_count(
    text: str,
    played_ms: float,
    audio_ms: float,
    *,
    word_timings: Sequence[TimedWord] | None = None,
    audio_complete: bool = True,
    ms_per_char: float = DEFAULT_MS_PER_CHAR,
) -> int:
    spans = [m.span() for m in _WORD.finditer(text)]
    if not spans or played_ms <= 0:
        return 0
    if word_timings:
        count = 0
        for timing in word_timings[: len(spans)]:
            if (timing.start_ms + timing.end_ms) / 2.0 <= played_ms:
                count += 1
            else:
                break
        if count == min(len(word_timings), len(spans)) and len(spans) > len(word_timings):
            return max(
                count,
                _reference_count(
                    text,
                    played_ms,
                    audio_ms,
                    audio_complete=audio_complete,
                    ms_per_char=ms_per_char,
                ),
            )
        return count
    text_len = len(text.rstrip())
    span_ms = audio_ms if audio_complete else max(audio_ms, text_len * ms_per_char)
    if span_ms <= 0:
        return 0
    if played_ms >= span_ms:
        return len(spans)
    count = 0
    for start, end in spans:
        mid_ms = (start + end) / 2.0 / text_len * span_ms
        if mid_ms <= played_ms:
            count += 1
        else:
            break
    return count


def _reference_prefix(text: str, played_ms: float, audio_ms: float, **kwargs: object) -> str:
    count = _reference_count(text, played_ms, audio_ms, **kwargs)  # type: ignore[arg-type]
    if count == 0:
        return ""
    spans = [m.span() for m in _WORD.finditer(text)]
    return text[: spans[count - 1][1]]


# Words and every kind of whitespace Python knows (tabs, NBSP, line/paragraph separators, the
# ASCII separators \x1c-\x1f), so a difference between the regex's and str.rstrip()'s idea of
# whitespace would show.
CHARS = st.sampled_from(list("ab,.!é漢 \t\n\x0b\x0c\r\x1c\x1f\x85\xa0\u2028\u3000"))
TEXTS = st.text(CHARS, max_size=60)
MS = st.one_of(
    st.floats(-100.0, 20_000.0),
    st.sampled_from([0.0, float("inf"), float("nan"), -float("inf")]),
)
TIMINGS = st.one_of(
    st.none(),
    st.lists(st.tuples(MS, MS).map(lambda t: WordTiming("w", t[0], t[1])), max_size=12),
)


@settings(max_examples=600, deadline=None)
@given(TEXTS, MS, MS, TIMINGS, st.booleans(), st.sampled_from([DEFAULT_MS_PER_CHAR, 40.0, 0.0]))
def test_count_and_prefix_equal_the_reference(
    text: str,
    played: float,
    audio: float,
    timings: list[WordTiming] | None,
    complete: bool,
    ms_per_char: float,
) -> None:
    kwargs = {"word_timings": timings, "audio_complete": complete, "ms_per_char": ms_per_char}
    expected = _reference_count(text, played, audio, **kwargs)  # type: ignore[arg-type]
    assert heard_word_count(text, played, audio, **kwargs) == expected  # type: ignore[arg-type]
    assert count_heard(word_spans(text), played, audio, **kwargs) == expected  # type: ignore[arg-type]
    assert heard_prefix(text, played, audio, **kwargs) == _reference_prefix(  # type: ignore[arg-type]
        text, played, audio, **kwargs
    )


@settings(max_examples=400, deadline=None)
@given(st.lists(TEXTS, max_size=12))
def test_growing_text_keeps_the_spans_of_the_whole_text(deltas: list[str]) -> None:
    grown = GrowingText()
    for delta in deltas:
        grown.extend(delta)
        assert grown.spans == word_spans(grown.text)
    assert grown.text == "".join(deltas)


class _ReferenceFollower:
    """The follow loop's poll body before the rewrite: `heard_prefix` over the whole text."""

    def __init__(self) -> None:
        self.text = ""
        self.released = ""
        self.shown: list[str] = []

    def poll(
        self,
        played: float,
        audio_ms: float,
        timings: Sequence[TimedWord] | None,
        audio_complete: bool,
        text_complete: bool,
    ) -> None:
        prefix = _reference_prefix(
            self.text, played, audio_ms, word_timings=timings, audio_complete=audio_complete
        )
        if not text_complete and prefix and prefix == self.text:
            prefix = prefix[: prefix.rstrip().rfind(" ") + 1].rstrip()
        if len(prefix) <= len(self.released) or not prefix.startswith(self.released):
            return
        self.shown.append(prefix[len(self.released) :])
        self.released = prefix


STEPS = st.one_of(
    st.tuples(st.just("text"), TEXTS),
    st.tuples(st.just("audio"), st.floats(0.0, 20_000.0)),
    st.tuples(st.just("audio_complete"), st.booleans()),
    st.tuples(st.just("text_complete"), st.booleans()),
    st.tuples(st.just("timings"), TIMINGS),
    st.tuples(st.just("poll"), st.floats(0.0, 20_000.0)),
)


@settings(max_examples=800, deadline=None)
@given(st.lists(STEPS, max_size=40), st.booleans())
def test_follower_releases_what_it_released_before(
    steps: list[tuple[str, object]], rising: bool
) -> None:
    """Any interleaving of text deltas, audio, flags, word timings and polls (at rising or
    arbitrary positions) shows the caller the same deltas as the whole-text follower did."""
    texts = MemoryTextSink()
    sync = TranscriptSync("m", texts, ManualClock())
    ref = _ReferenceFollower()
    audio_ms, high = 0.0, 0.0
    for kind, value in steps:
        if kind == "text":
            assert isinstance(value, str)
            sync.add_text(value)
            ref.text += value
        elif kind == "audio":
            assert isinstance(value, float)
            sync.audio_ms = audio_ms = value
        elif kind == "audio_complete":
            sync.audio_complete = bool(value)
        elif kind == "text_complete":
            sync.text_complete = bool(value)
        elif kind == "timings":
            sync.word_timings = value  # type: ignore[assignment]
        else:
            assert isinstance(value, float)
            high = max(high, value) if rising else value
            sync.release_heard(high)
            ref.poll(high, audio_ms, sync.word_timings, sync.audio_complete, sync.text_complete)
    assert sync.text == ref.text
    assert sync.released == ref.released
    shown = [e.data["text"] for e in texts.events if e.kind == "agent_text"]
    assert shown == ref.shown


@settings(max_examples=600, deadline=None)
@given(TEXTS, MS, st.booleans(), MS, st.lists(st.floats(0.0, 1.0), max_size=5))
def test_the_count_holds_until_the_next_boundary(
    text: str, audio: float, complete: bool, p0: float, fractions: list[float]
) -> None:
    spans = word_spans(text)
    count = count_heard(spans, p0, audio, audio_complete=complete)
    until = next_heard_ms(spans, count, audio, audio_complete=complete)
    if not p0 < until:
        return
    for fraction in fractions:
        p = p0 + (until - p0) * fraction if until != float("inf") else p0 / max(fraction, 1e-3)
        if p0 <= p < until:
            assert count_heard(spans, p, audio, audio_complete=complete) == count
    if until != float("inf") and until > 0:
        assert count_heard(spans, until, audio, audio_complete=complete) > count


HEARD_STEPS = st.one_of(
    st.tuples(st.just("text"), TEXTS),
    st.tuples(
        st.just("count"),
        st.tuples(
            st.one_of(st.sampled_from([300.0, 700.0, 1200.0, 2500.0]), st.floats(0.0, 6000.0), MS),
            st.one_of(st.sampled_from([0.0, 1000.0, 5000.0]), MS),  # repeats: reuse
            st.one_of(st.none(), TIMINGS),
            st.booleans(),
        ),
    ),
)


@settings(max_examples=600, deadline=None)
@given(st.lists(HEARD_STEPS, max_size=40))
def test_growing_text_counts_what_count_heard_counts(steps: list[tuple[str, object]]) -> None:
    """The remembered count is only ever reused where counting again gives the same."""
    grown = GrowingText()
    for kind, value in steps:
        if kind == "text":
            assert isinstance(value, str)
            grown.extend(value)
            continue
        assert isinstance(value, tuple)
        played, audio, timings, complete = value
        assert grown.heard(
            played, audio, word_timings=timings, audio_complete=complete
        ) == count_heard(grown.spans, played, audio, word_timings=timings, audio_complete=complete)


def test_a_remembered_count_is_dropped_when_text_or_audio_changes() -> None:
    text = "one two three four five six"  # 27 characters: 1485 ms at the default rate
    grown = GrowingText()
    grown.extend(text)
    assert grown.heard(700.0, 1000.0) == count_heard(grown.spans, 700.0, 1000.0) == 4
    # Same position and audio, audio no longer complete: spread over 1485 ms, fewer words.
    assert grown.heard(700.0, 1000.0, audio_complete=False) == 3
    assert grown.heard(700.0, 2000.0) == 2  # more audio, same position: fewer words
    grown.extend(" seven eight")  # a longer text: each word's share of the audio shrinks
    assert grown.heard(700.0, 2000.0) == 3
