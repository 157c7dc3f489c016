"""Real espeak-ng synthesis: audible, plausible durations, word timings that match the text."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from vocalis.audio import AudioFrame, EspeakError, SpeechClip, espeak, synthesize, synthesize_async

SENTENCE = "Hello there, my name is Vocalis. How can I help you today?"


def rms(x: np.ndarray) -> float:
    f = x.astype(np.float64)
    return float(np.sqrt(np.mean(f * f)))


def test_clip_is_real_speech_with_plausible_duration() -> None:
    clip = synthesize(SENTENCE)
    assert isinstance(clip, SpeechClip)
    assert clip.sample_rate == 24000
    assert clip.samples.dtype == np.int16
    assert clip.samples.ndim == 1
    assert rms(clip.samples) > 1000  # ~-20 dBFS: clearly not silence
    n_words = len(SENTENCE.split())
    # 175 wpm ≈ 343 ms/word; allow pauses at punctuation and slack either way
    assert n_words * 200 < clip.duration_ms < n_words * 600
    assert clip.duration_ms == pytest.approx(len(clip.samples) / 24)


def test_word_timings_match_text_and_are_monotonic() -> None:
    clip = synthesize(SENTENCE)
    assert [w.word for w in clip.words] == SENTENCE.split()
    for w in clip.words:
        assert SENTENCE[w.char_start : w.char_end] == w.word
        assert 0 <= w.start_ms < w.end_ms
    for a, b in zip(clip.words, clip.words[1:], strict=False):
        assert a.end_ms <= b.start_ms
        assert a.start_ms < b.start_ms
    assert clip.words[-1].end_ms <= clip.duration_ms
    assert clip.words[-1].end_ms > clip.duration_ms - 300


def test_word_boundaries_fall_on_audio() -> None:
    """Each word's span holds speech, and the pause after a sentence end is silent."""
    clip = synthesize(SENTENCE)
    frame = clip.to_frame()
    for w in clip.words:
        assert rms(frame.slice_ms(w.start_ms, w.end_ms).samples) > 300, w
    period = next(w for w in clip.words if w.word == "Vocalis.")
    nxt = clip.words[clip.words.index(period) + 1]
    assert nxt.start_ms - period.end_ms > 100  # espeak pauses at a full stop
    assert rms(frame.slice_ms(period.end_ms + 10, nxt.start_ms - 10).samples) < 100


def test_numbers_with_several_espeak_words_count_once() -> None:
    text = "I have 42 apples and 1,500 pears."
    clip = synthesize(text)
    assert [w.word for w in clip.words] == text.split()
    number = clip.words[5]
    assert number.word == "1,500"
    assert number.end_ms - number.start_ms > 600  # "one thousand five hundred"


def test_non_ascii_positions_are_characters() -> None:
    text = "Café naïve résumé, hello world."
    clip = synthesize(text)
    assert [w.word for w in clip.words] == text.split()
    assert all(text[w.char_start : w.char_end] == w.word for w in clip.words)


def test_text_heard_is_a_word_boundary_prefix() -> None:
    clip = synthesize(SENTENCE)
    assert clip.text_heard(0) == ""
    fifth = clip.words[4]
    assert clip.text_heard(fifth.end_ms) == "Hello there, my name is"
    assert clip.text_heard(fifth.end_ms - 1) == "Hello there, my name"
    assert clip.text_heard(clip.duration_ms) == SENTENCE
    assert len(clip.words_heard(clip.duration_ms)) == len(clip.words)


def test_voices_differ_and_variants_resolve() -> None:
    us = synthesize("Good morning, how are you?", voice="en-us")
    gb = synthesize("Good morning, how are you?", voice="en-gb")
    female = synthesize("Good morning, how are you?", voice="en-us+f3")
    for a, b in ((us, gb), (us, female), (gb, female)):
        n = min(len(a.samples), len(b.samples))
        assert len(a.samples) != len(b.samples) or not np.array_equal(a.samples, b.samples)
        assert n > 0

    # the female variant is pitched higher: more zero crossings per second
    def zcr(c: SpeechClip) -> float:
        s = np.sign(c.samples[np.abs(c.samples) > 500])
        return float(np.count_nonzero(np.diff(s))) / c.duration_ms

    assert zcr(female) > zcr(us)


def test_parameters_change_audio() -> None:
    slow = synthesize("one two three four five", words_per_minute=120)
    fast = synthesize("one two three four five", words_per_minute=300)
    assert slow.duration_ms > 1.8 * fast.duration_ms
    native = synthesize("one two three four five", sample_rate=22050)
    assert native.sample_rate == 22050
    assert len(native.samples) * 24000 == pytest.approx(
        len(synthesize("one two three four five").samples) * 22050, rel=0.001
    )
    assert isinstance(native.to_frame(), AudioFrame)


def test_cached_and_read_only() -> None:
    a = synthesize("cache me")
    assert synthesize("cache me") is a
    assert not a.samples.flags.writeable


def test_empty_and_whitespace_text() -> None:
    clip = synthesize("   ")
    assert clip.words == ()
    assert clip.text_heard(1000) == ""


def test_errors() -> None:
    with pytest.raises(EspeakError, match="no voice"):
        synthesize("hello", voice="xx-nope")
    with pytest.raises(ValueError, match="words_per_minute"):
        synthesize("hello", words_per_minute=10)
    with pytest.raises(ValueError, match="pitch"):
        synthesize("hello", pitch=101)
    # the engine still works after a failed voice
    assert synthesize("still fine", voice="en-us").words[0].word == "still"


def test_concurrent_calls_are_serialised() -> None:
    texts = [f"thread number {i} speaking now" for i in range(6)]
    results: dict[str, SpeechClip] = {}

    def run(t: str) -> None:
        results[t] = synthesize(t, voice="en-us+m2")

    threads = [threading.Thread(target=run, args=(t,)) for t in texts]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for t in texts:
        assert [w.word for w in results[t].words] == t.split()
        assert rms(results[t].samples) > 1000


async def test_async_variant() -> None:
    clip = await synthesize_async("asynchronous speech", voice="en-gb")
    assert clip is synthesize("asynchronous speech", voice="en-gb")
    assert [w.word for w in clip.words] == ["asynchronous", "speech"]


def test_synthesis_is_reproducible_regardless_of_history() -> None:
    if not espeak.deterministic():
        pytest.skip("espeak-ng flutter state not reachable on this platform")
    text = "Reproducible speech, please."
    espeak.clear_cache()
    first = synthesize(text)
    synthesize("something longer in between to move the internal state", voice="en-gb+f2")
    synthesize(text, words_per_minute=130)
    espeak.clear_cache()
    again = synthesize(text)
    assert again is not first
    assert np.array_equal(first.samples, again.samples)
    assert first.words == again.words


def test_tokens_without_espeak_events_still_get_timings() -> None:
    text = "Wait — what? It's U.S.A. e-mail"
    clip = synthesize(text)
    assert [w.word for w in clip.words] == text.split()
    dash = clip.words[1]
    assert dash.start_ms == dash.end_ms == clip.words[2].start_ms
    starts = [w.start_ms for w in clip.words]
    assert starts == sorted(starts)
    assert clip.words[-1].end_ms <= clip.duration_ms


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
def test_word_timings_stay_inside_clip_at_any_rate(rate: int) -> None:
    clip = synthesize("Wait — what? It's U.S.A. e-mail", sample_rate=rate)
    assert clip.sample_rate == rate
    assert all(0 <= w.start_ms <= w.end_ms <= clip.duration_ms for w in clip.words)
