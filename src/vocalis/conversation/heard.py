"""Which words of a message did the caller hear? (pure, no I/O, no clock)

The transport reports *milliseconds* played; history needs *words*. This module maps one to
the other as a word-boundary prefix of the generated text, so an interrupted message is stored
as exactly the words whose audio reached the caller (at most one word off), never the
look-ahead transcript the provider sent before the audio (P1, S11).

Two sources of timing, best first:

1. Word timings (`WordTiming`), when the provider or a TTS supplies them: a word is heard when
   the middle of its audio has played.
2. An estimate: words are spread over the audio in proportion to their character offsets.
   When the message's audio is complete (`audio_complete=True`) the text spans exactly the
   received audio. When it is not (the response was cancelled or the socket died mid-item),
   the transcript may run ahead of the audio, so the text is spread over
   `max(audio_ms, chars × ms_per_char)` — which never credits the caller with words whose audio
   was never even generated.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

# espeak/gpt voices speak ~15-18 characters per second; 55 ms/char is on the fast side, which
# keeps the estimate for incomplete audio conservative only when text really ran ahead.
DEFAULT_MS_PER_CHAR = 55.0

_WORD = re.compile(r"\S+")


class TimedWord(Protocol):
    """Anything with a word's audio span: `WordTiming` here, `vocalis.audio.espeak.WordTiming`.

    Timings are matched to the whitespace-separated words of the text, in order.
    """

    @property
    def start_ms(self) -> float: ...

    @property
    def end_ms(self) -> float: ...


@dataclass(frozen=True, slots=True)
class WordTiming:
    """One word's position in the message audio (ms from the message's first sample)."""

    word: str
    start_ms: float
    end_ms: float


# A speaking rate measured from a message's own stream is trusted only within these bounds
# (ms per character), from this many text deltas spread over at least this much audio.
_RATE_BOUNDS = (40.0, DEFAULT_MS_PER_CHAR)
_RATE_MIN_POINTS = 4
_RATE_MIN_SPREAD_MS = 500.0


def speech_rate(marks: Sequence[tuple[int, float]], audio_ms: float) -> float | None:
    """The message's speaking rate (ms per character), measured from its own stream.

    `marks` holds, for each text delta, (characters before it, audio ms received when it
    arrived). A transcript that runs ahead of its audio by a steady look-ahead grows at the
    speaking rate all the same, so the slope of audio over characters is that rate. Only the
    steady part counts: deltas that came before any audio (the initial look-ahead burst) or
    after the last audio are left out. None when there is too little to measure; the caller
    then falls back to `DEFAULT_MS_PER_CHAR`. Why it matters: a message the provider cut short
    was heard in full, and spreading its text at a fixed 55 ms/char drops words a faster
    voice really said. The result is never slower than that default (a noisy measurement must
    not credit fewer words than before) nor faster than 40 ms/char (25 characters a second:
    a burst of text must not credit words far beyond the audio).
    """
    points = [(float(c), a) for c, a in marks if 0.0 < a < audio_ms]
    if len(points) < _RATE_MIN_POINTS or points[-1][1] - points[0][1] < _RATE_MIN_SPREAD_MS:
        return None
    n = float(len(points))
    mean_c = sum(c for c, _ in points) / n
    mean_a = sum(a for _, a in points) / n
    var_c = sum((c - mean_c) ** 2 for c, _ in points)
    if var_c <= 0:
        return None
    slope = sum((c - mean_c) * (a - mean_a) for c, a in points) / var_c
    if slope <= 0:
        return None
    low, high = _RATE_BOUNDS
    return min(max(slope, low), high)


def word_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) character offsets of each whitespace-separated word."""
    return [m.span() for m in _WORD.finditer(text)]


class GrowingText:
    """A message's text as it streams in, with its word spans kept up to date.

    Why: the transcript follower asks "how many words were heard?" several times a second for
    every speaking session; rescanning the whole text for its words on every poll was most of
    that cost. Text only ever grows at its end, so a delta can change only the last word (when
    the text ended inside it) and add words after it: only that tail is scanned again.
    `spans` is always `word_spans(text)`.
    """

    __slots__ = ("_window", "spans", "text")

    def __init__(self) -> None:
        self.text = ""
        self.spans: list[tuple[int, int]] = []
        # The last estimate: (audio_ms, audio_complete, from_ms, next_ms, count) — `count`
        # holds for every position in [from_ms, next_ms) while the text and audio stay.
        self._window: tuple[float, bool, float, float, int] | None = None

    def extend(self, delta: str) -> None:
        if not delta:
            return
        spans = self.spans
        end = len(self.text)
        # The last word continues into `delta` only if the text ended inside it.
        start = spans.pop()[0] if spans and spans[-1][1] == end else end
        self.text += delta
        spans.extend(m.span() for m in _WORD.finditer(self.text, start))
        self._window = None

    def heard(
        self,
        played_ms: float,
        audio_ms: float,
        *,
        word_timings: Sequence[TimedWord] | None = None,
        audio_complete: bool = True,
    ) -> int:
        """`count_heard` of this text, recounted by the estimate only once the position
        crossed the next word boundary (a word lasts several polls of a follower)."""
        if word_timings:
            return count_heard(
                self.spans,
                played_ms,
                audio_ms,
                word_timings=word_timings,
                audio_complete=audio_complete,
            )
        window = self._window
        if (
            window is not None
            and window[0] == audio_ms
            and window[1] is audio_complete
            and window[2] <= played_ms < window[3]
        ):
            return window[4]
        count = count_heard(self.spans, played_ms, audio_ms, audio_complete=audio_complete)
        next_ms = next_heard_ms(self.spans, count, audio_ms, audio_complete=audio_complete)
        self._window = (audio_ms, audio_complete, played_ms, next_ms, count)
        return count


def next_heard_ms(
    spans: Sequence[tuple[int, int]],
    count: int,
    audio_ms: float,
    *,
    audio_complete: bool = True,
    ms_per_char: float = DEFAULT_MS_PER_CHAR,
) -> float:
    """Up to where the estimate (no word timings) keeps crediting `count` words.

    If `count_heard(spans, p0, …) == count`, it stays `count` for every position in
    `[p0, next_heard_ms(…))`: the count never falls as the position grows, and it rises
    only where the next word's middle (or the end of the audio) is reached — computed with
    `count_heard`'s own expression, so the boundary is exact. `inf` when it never rises.
    """
    if count >= len(spans):
        return math.inf
    text_len = spans[-1][1]
    span_ms = audio_ms if audio_complete else max(audio_ms, text_len * ms_per_char)
    if not span_ms > 0:  # also NaN: no word is ever credited
        return math.inf
    start, end = spans[count]
    return min((start + end) / 2.0 / text_len * span_ms, span_ms)


def heard_word_count(
    text: str,
    played_ms: float,
    audio_ms: float,
    *,
    word_timings: Sequence[TimedWord] | None = None,
    audio_complete: bool = True,
    ms_per_char: float = DEFAULT_MS_PER_CHAR,
) -> int:
    """Number of leading words of `text` whose audio (mostly) played."""
    return count_heard(
        word_spans(text),
        played_ms,
        audio_ms,
        word_timings=word_timings,
        audio_complete=audio_complete,
        ms_per_char=ms_per_char,
    )


def count_heard(
    spans: Sequence[tuple[int, int]],
    played_ms: float,
    audio_ms: float,
    *,
    word_timings: Sequence[TimedWord] | None = None,
    audio_complete: bool = True,
    ms_per_char: float = DEFAULT_MS_PER_CHAR,
) -> int:
    """`heard_word_count` of the text whose `word_spans` are `spans` (computed once by the
    caller, e.g. `GrowingText`). The text's length without trailing whitespace is where its
    last word ends."""
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
            # Timings ran out (text longer than timed words): fall back to the estimate for the
            # tail, but never below the timed words already proven heard.
            return max(
                count,
                count_heard(
                    spans,
                    played_ms,
                    audio_ms,
                    audio_complete=audio_complete,
                    ms_per_char=ms_per_char,
                ),
            )
        return count
    text_len = spans[-1][1]
    span_ms = audio_ms if audio_complete else max(audio_ms, text_len * ms_per_char)
    if span_ms <= 0:
        return 0
    if played_ms >= span_ms:
        return len(spans)
    # Word middles grow with their offsets, so "the middle played" holds for a leading run of
    # words: a binary search for its end instead of a walk over every word (same test, same
    # float expression, so the same count — NaN positions included: none heard).
    low, high = 0, len(spans)
    while low < high:
        mid = (low + high) // 2
        start, end = spans[mid]
        if (start + end) / 2.0 / text_len * span_ms <= played_ms:
            low = mid + 1
        else:
            high = mid
    return low


def heard_prefix(
    text: str,
    played_ms: float,
    audio_ms: float,
    *,
    word_timings: Sequence[TimedWord] | None = None,
    audio_complete: bool = True,
    ms_per_char: float = DEFAULT_MS_PER_CHAR,
) -> str:
    """The word-boundary prefix of `text` that was heard after `played_ms` of `audio_ms`.

    Always `text[:k]` for some k at the end of a word (or ""), so stored text is verbatim model
    output, never re-spaced or re-punctuated.
    """
    spans = word_spans(text)
    count = count_heard(
        spans,
        played_ms,
        audio_ms,
        word_timings=word_timings,
        audio_complete=audio_complete,
        ms_per_char=ms_per_char,
    )
    if count == 0:
        return ""
    return text[: spans[count - 1][1]]
