"""`heard_prefix`: the one rule that maps played milliseconds to heard words (UI and history)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pytest

from vocalis.conversation.heard import DEFAULT_MS_PER_CHAR, heard_prefix, speech_rate


@dataclass(frozen=True)
class Timing:
    """A bare word span: any object with start_ms/end_ms is accepted (`TimedWord`)."""

    start_ms: float
    end_ms: float


TEXT = "One, two, three, four, five."


def test_with_word_timings_a_word_counts_once_its_middle_played() -> None:
    timings = [Timing(0, 300), Timing(400, 700), Timing(800, 1100), Timing(1200, 1500)]
    text = "alpha beta  gamma delta"
    assert heard_prefix(text, 0, 1600, word_timings=timings) == ""
    assert heard_prefix(text, 149, 1600, word_timings=timings) == ""
    assert heard_prefix(text, 150, 1600, word_timings=timings) == "alpha"
    # Spacing kept: the stored text is verbatim model output.
    assert heard_prefix(text, 950, 1600, word_timings=timings) == "alpha beta  gamma"
    assert heard_prefix(text, 1600, 1600, word_timings=timings) == text
    # Timings decide even while the audio is incomplete.
    assert (
        heard_prefix(text, 1000, 900, word_timings=timings, audio_complete=False)
        == "alpha beta  gamma"
    )


def test_estimate_spreads_words_over_the_complete_audio() -> None:
    assert heard_prefix(TEXT, 2500, 2500) == TEXT
    assert heard_prefix(TEXT, 0, 2500) == ""
    assert heard_prefix(TEXT, 1250, 2500) in {"One, two,", "One, two, three,"}
    prefixes = [heard_prefix(TEXT, ms, 2500) for ms in range(0, 2600, 50)]
    assert all(b.startswith(a) for a, b in itertools.pairwise(prefixes))


def test_incomplete_audio_never_credits_words_beyond_the_speaking_rate() -> None:
    # 55 ms per character: the middle of "One," (chars 0-4) is at 110 ms.
    assert heard_prefix(TEXT, 100, 0, audio_complete=False) == ""
    assert heard_prefix(TEXT, 120, 0, audio_complete=False) == "One,"
    assert heard_prefix(TEXT, 60_000, 0, audio_complete=False) == TEXT
    assert heard_prefix("   ", 1000, 1000) == ""
    assert heard_prefix("padded words ", 10_000, 10_000) == "padded words"


def test_heard_prefix_is_within_one_word_of_espeak_truth() -> None:
    from vocalis.audio.espeak import synthesize

    clip = synthesize("Counting slowly: one, two, three, four, five, six, seven, eight.")
    for played in np.linspace(0, clip.duration_ms, 23):
        truth = len(clip.text_heard(float(played)).split())
        for timings in (None, clip.words):
            heard = heard_prefix(clip.text, float(played), clip.duration_ms, word_timings=timings)
            assert clip.text.startswith(heard)
            assert abs(len(heard.split()) - truth) <= 1, (played, truth, heard)


def test_speech_rate_is_the_slope_of_audio_over_text_despite_the_look_ahead() -> None:
    """A transcript 600 ms ahead of audio spoken at 50 ms/char: the steady part of its stream
    gives the rate; the burst before any audio and the marks after it are left out."""
    rate, lookahead = 50.0, 600.0
    marks = [(c, max(0.0, c * rate - lookahead)) for c in range(0, 200, 7)]
    assert speech_rate(marks, audio_ms=5000) == pytest.approx(rate)


def test_speech_rate_needs_enough_stream_and_stays_plausible() -> None:
    assert speech_rate([(0, 0.0), (10, 100.0), (20, 200.0)], audio_ms=1000) is None  # 2 points
    assert speech_rate([(c, 100.0 + c) for c in range(10)], audio_ms=1000) is None  # 9 ms apart
    burst = [(c, 100.0 + c * 0.5) for c in range(0, 2000, 100)]  # text far faster than speech
    assert speech_rate(burst, audio_ms=5000) == 40.0  # clamped to the fastest plausible voice
    slow = [(c, 80.0 * c) for c in range(1, 60, 5)]
    assert speech_rate(slow, audio_ms=5000) == DEFAULT_MS_PER_CHAR  # never below the default
