"""Transcript synchronisation: show (and remember) only the words whose audio was played.

Why it exists: providers stream a message's transcript well ahead of its audio (1-2 s is
common). Showing text as it arrives puts words on screen — and, worse, into the history —
that the caller never heard (field problems P1/P8, scenario S11). Here text is released by
the *playback position* of its segment.

Two pieces:

- `heard_prefix(text, played_ms, total_ms, word_timings)` — a pure function: the
  word-boundary prefix of `text` whose audio lies within the first `played_ms`. The runtime's
  ledger uses it for the history, so UI and history agree on the same rule.
- `TranscriptSynchronizer` — per segment: collects text deltas and the amount of audio
  pushed, follows the segment's playback and hands each word to the `TextSink` when its audio
  has played; when the segment resolves it emits the rest of the heard prefix and the verdict.

The rule for "heard" is the ledger's (`vocalis.conversation.heard`): a word counts once the
middle of its audio has played; without provider word timings positions are estimated —
proportionally over the whole audio when its total length is known (`total_ms`), else from a
speaking rate. Estimates are about one word off; the final
`agent_segment_ended(heard_text=...)` is authoritative.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from vocalis.conversation import heard as _heard
from vocalis.conversation.heard import DEFAULT_MS_PER_CHAR
from vocalis.transports.base import OutputSegment, PlayoutResult, PlayoutStatus, TextSink
from vocalis.utils.clock import Clock

__all__ = [
    "DEFAULT_MS_PER_CHAR",
    "SupportsPlayedMs",
    "TimedWord",
    "TranscriptSynchronizer",
    "heard_prefix",
    "heard_word_count",
]

_TOKEN_RE = re.compile(r"\S+")


class TimedWord(Protocol):
    """A word's audio span in its segment (ms from the segment's first sample).

    `vocalis.audio.espeak.WordTiming` and `vocalis.conversation.heard.WordTiming` satisfy it.
    Timings are matched to the whitespace-delimited tokens of the text in order.
    """

    @property
    def start_ms(self) -> float: ...

    @property
    def end_ms(self) -> float: ...


@runtime_checkable
class SupportsPlayedMs(Protocol):
    """A segment that knows its exact played position (e.g. `ClockedSegment`)."""

    @property
    def played_ms(self) -> float: ...


def _tokens(text: str) -> list[re.Match[str]]:
    return list(_TOKEN_RE.finditer(text))


def heard_word_count(
    text: str,
    played_ms: float,
    total_ms: float | None,
    word_timings: Sequence[TimedWord] | None = None,
    *,
    ms_per_char: float = DEFAULT_MS_PER_CHAR,
) -> int:
    """How many whitespace tokens of `text` were heard (see `heard_prefix`)."""
    return _heard.heard_word_count(
        text,
        played_ms,
        0.0 if total_ms is None else total_ms,
        word_timings=word_timings,  # type: ignore[arg-type]  # structural: start_ms/end_ms
        audio_complete=total_ms is not None,
        ms_per_char=ms_per_char,
    )


def heard_prefix(
    text: str,
    played_ms: float,
    total_ms: float | None,
    word_timings: Sequence[TimedWord] | None = None,
    *,
    ms_per_char: float = DEFAULT_MS_PER_CHAR,
) -> str:
    """The word-boundary prefix of `text` whose audio played within `played_ms`.

    - `total_ms`: length of the message's whole audio when known (all audio received); the
      words are then spread over it. `None` while the length is unknown: word positions come
      from the speaking rate `ms_per_char`.
    - `word_timings`: per-token audio spans from the provider/TTS, used instead of estimates.

    One rule for the whole product: this delegates to `vocalis.conversation.heard` (the
    ledger's rule: a word is heard once the middle of its audio played), so the transcript on
    screen and the history agree. Verbatim prefix of `text` (spacing and punctuation kept).
    """
    count = heard_word_count(text, played_ms, total_ms, word_timings, ms_per_char=ms_per_char)
    if count == 0:
        return ""
    tokens = _tokens(text)
    return text[tokens[0].start() : tokens[count - 1].end()]


class TranscriptSynchronizer:
    """Releases one segment's words to a `TextSink` as their audio plays.

    Feed it with `push_text()` / `end_text()` (transcript deltas), `push_audio_ms()` /
    `end_audio()` (audio handed to the sink) and optionally `set_word_timings()`; run `run()`
    as a task next to the playout. It follows the segment's playback position — exact when the
    segment exposes `played_ms` (`SupportsPlayedMs`), else the clock time since `started`,
    never beyond the audio pushed — and, when the segment resolves, calls `finish()`.

    `finish(result)` is synchronous and idempotent: it emits the rest of the heard prefix,
    reports `agent_segment_ended` and returns the heard text, so the runtime may call it
    directly with the result it awaited.
    """

    def __init__(
        self,
        segment: OutputSegment,
        text_sink: TextSink | None,
        clock: Clock,
        *,
        ms_per_char: float = DEFAULT_MS_PER_CHAR,
        poll_ms: float = 40.0,
    ) -> None:
        self.segment = segment
        self.text_sink = text_sink
        self.clock = clock
        self.ms_per_char = ms_per_char
        self.poll_s = poll_ms / 1000.0
        self.text = ""
        self.text_ended = False
        self.audio_ms = 0.0
        self.audio_ended = False
        self.word_timings: Sequence[TimedWord] | None = None
        self._emitted_words = 0
        self._emitted_chars = 0
        self._heard: str | None = None

    # ------------------------------------------------------------------ inputs

    def push_text(self, delta: str) -> None:
        if self._heard is None:
            self.text += delta

    def end_text(self) -> None:
        self.text_ended = True

    def push_audio_ms(self, ms: float) -> None:
        self.audio_ms += ms

    def end_audio(self) -> None:
        self.audio_ended = True

    def set_word_timings(self, timings: Sequence[TimedWord]) -> None:
        self.word_timings = timings

    # ------------------------------------------------------------------ position

    @property
    def total_ms(self) -> float | None:
        """The audio length, once both the text and the audio are complete."""
        return self.audio_ms if (self.audio_ended and self.text_ended) else None

    def position_ms(self) -> float:
        """Best current estimate of the played position of the segment."""
        seg = self.segment
        if isinstance(seg, SupportsPlayedMs):
            return seg.played_ms
        if not seg.started.done() or seg.started.cancelled():
            return 0.0
        elapsed = (self.clock.now() - seg.started.result()) * 1000.0
        return max(0.0, min(elapsed, self.audio_ms))

    @property
    def emitted_text(self) -> str:
        return self.text[: self._emitted_chars].strip()

    # ------------------------------------------------------------------ outputs

    def update(self, played_ms: float | None = None) -> None:
        """Emit the words whose audio has played by `played_ms` (default: current position)."""
        if self._heard is not None:
            return
        position = self.position_ms() if played_ms is None else played_ms
        count = heard_word_count(
            self.text,
            position,
            self.total_ms,
            self.word_timings,
            ms_per_char=self.ms_per_char,
        )
        # A word still being streamed (text not ended, last token) is not complete yet.
        tokens = _tokens(self.text)
        if not self.text_ended and count == len(tokens) and not self.text[-1:].isspace():
            count -= 1
        self._emit_until(tokens, count)

    def _emit_until(self, tokens: list[re.Match[str]], count: int) -> None:
        if count <= self._emitted_words:
            return
        end = tokens[count - 1].end()
        chunk = self.text[self._emitted_chars : end]
        if self._emitted_words == 0:
            chunk = chunk.lstrip()
        self._emitted_words = count
        self._emitted_chars = end
        if self.text_sink is not None and chunk:
            self.text_sink.agent_text(self.segment.id, chunk)

    def finish(self, result: PlayoutResult) -> str:
        """Emit the rest of what was heard, report the verdict, return the heard text."""
        if self._heard is not None:
            return self._heard
        if result.status is PlayoutStatus.FULL:
            heard = self.text.strip()
            count = len(_tokens(self.text))
        elif result.status is PlayoutStatus.SKIPPED:
            heard, count = "", 0
        else:
            total = self.audio_ms if self.audio_ended and self.text_ended else None
            heard = heard_prefix(
                self.text,
                result.played_ms,
                total,
                self.word_timings,
                ms_per_char=self.ms_per_char,
            )
            count = heard_word_count(
                self.text,
                result.played_ms,
                total,
                self.word_timings,
                ms_per_char=self.ms_per_char,
            )
        self._emit_until(_tokens(self.text), count)
        self._heard = heard
        if self.text_sink is not None:
            self.text_sink.agent_segment_ended(self.segment.id, result, heard)
        return heard

    async def run(self) -> str:
        """Follow playback until the segment resolves; returns the heard text."""
        playout = asyncio.ensure_future(self.segment.wait_for_playout())
        try:
            while not playout.done():
                self.update()
                sleeper = asyncio.ensure_future(self.clock.sleep(self.poll_s))
                try:
                    await asyncio.wait({playout, sleeper}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    sleeper.cancel()
            return self.finish(playout.result())
        finally:
            playout.cancel()
