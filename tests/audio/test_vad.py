"""EnergyVAD on real espeak speech, silence, noise and clicks; chunking must not matter."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vocalis.audio import (
    EnergyVAD,
    VADEvent,
    db_to_threshold,
    resample,
    synthesize,
    threshold_to_db,
    ulaw_decode,
    ulaw_encode,
)

RATE = 24000
LEAD_MS = 1000
SENTENCE = "Hello there, my name is Vocalis. How can I help you today?"


def padded_speech(rate: int = RATE, tail_ms: int = 1500) -> tuple[np.ndarray, float, float]:
    """Speech with LEAD_MS of silence before and tail_ms after; returns true onset/offset ms."""
    clip = synthesize(SENTENCE, sample_rate=rate)
    audible = np.flatnonzero(np.abs(clip.samples.astype(np.int32)) > 300)
    onset = LEAD_MS + audible[0] * 1000 / rate
    offset = LEAD_MS + (audible[-1] + 1) * 1000 / rate
    lead = np.zeros(LEAD_MS * rate // 1000, dtype=np.int16)
    tail = np.zeros(tail_ms * rate // 1000, dtype=np.int16)
    return np.concatenate([lead, clip.samples, tail]), onset, offset


def feed(vad: EnergyVAD, x: np.ndarray, chunk: int) -> list[VADEvent]:
    events: list[VADEvent] = []
    for i in range(0, len(x), chunk):
        events += vad.process(x[i : i + chunk])
    return events


def noise(ms: int, dbfs: float, seed: int = 0, rate: int = RATE) -> np.ndarray:
    rng = np.random.default_rng(seed)
    amp = 32768 * 10 ** (dbfs / 20)
    return np.clip(rng.normal(0, amp, ms * rate // 1000), -32768, 32767).astype(np.int16)


def test_threshold_mapping() -> None:
    assert threshold_to_db(0.5) == -40.0
    assert threshold_to_db(0.0) == -70.0
    assert threshold_to_db(1.0) == -10.0
    assert threshold_to_db(0.8) > threshold_to_db(0.2)
    assert db_to_threshold(threshold_to_db(0.3)) == pytest.approx(0.3)
    assert db_to_threshold(-200) == 0.0
    with pytest.raises(ValueError):
        threshold_to_db(1.5)


def test_speech_onset_and_offset_on_real_speech() -> None:
    x, onset, offset = padded_speech()
    vad = EnergyVAD(RATE)
    events = feed(vad, x, 480)  # 20 ms chunks
    assert [e.kind for e in events] == ["speech_started", "speech_stopped"]
    started, stopped = events
    assert abs(started.onset_ms - onset) <= 60
    assert started.at_ms == pytest.approx(started.onset_ms - 300)  # prefix padding
    assert started.detected_ms == pytest.approx(started.onset_ms + 100)  # min_speech
    assert abs(stopped.onset_ms - offset) <= 60
    assert stopped.at_ms == pytest.approx(stopped.onset_ms + 500)  # min_silence
    assert stopped.detected_ms == stopped.at_ms
    assert not vad.in_speech
    assert vad.position_ms == pytest.approx(len(x) * 1000 / RATE)


def test_pause_shorter_than_min_silence_keeps_one_turn() -> None:
    x, _, _ = padded_speech()
    one_turn = EnergyVAD(RATE, min_silence_ms=500).process(x)
    assert len(one_turn) == 2
    # the full stop after "Vocalis." is a ~300 ms pause: a 200 ms silence window splits there
    two_turns = EnergyVAD(RATE, min_silence_ms=200).process(x)
    assert [e.kind for e in two_turns] == ["speech_started", "speech_stopped"] * 2
    clip = synthesize(SENTENCE)
    how = next(w for w in clip.words if w.word == "How")
    assert abs(two_turns[2].onset_ms - (LEAD_MS + how.start_ms)) <= 60
    # padding never reaches back before the previous stop
    assert two_turns[2].at_ms >= two_turns[1].at_ms


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=3000), min_size=1, max_size=40))
def test_events_do_not_depend_on_chunking(sizes: list[int]) -> None:
    x, _, _ = padded_speech()
    reference = EnergyVAD(RATE, min_silence_ms=200).process(x)
    vad = EnergyVAD(RATE, min_silence_ms=200)
    events: list[VADEvent] = []
    pos = 0
    i = 0
    while pos < len(x):
        size = sizes[i % len(sizes)]
        events += vad.process(x[pos : pos + size])
        pos += size
        i += 1
    assert events == reference


def test_silence_and_low_noise_produce_no_events() -> None:
    vad = EnergyVAD(RATE)
    assert feed(vad, np.zeros(5 * RATE, dtype=np.int16), 480) == []
    assert feed(vad, noise(5000, -60.0), 480) == []
    assert feed(vad, noise(5000, -48.0, seed=1), 333) == []
    assert vad.flush() == []


@pytest.mark.parametrize(("amplitude", "speech"), [(327, False), (328, True), (-328, True)])
def test_level_just_below_or_above_the_threshold(amplitude: int, speech: bool) -> None:
    # -40 dBFS is a mean square of 2**30 * 1e-4 = 107374.2: a constant 327 (106929) stays
    # below it, 328 (107584) is above. Quiet chunks take a peak-only shortcut; it must give
    # the same answer as the per-window energies at the very boundary.
    level = np.full(RATE // 2, amplitude, dtype=np.int16)
    vad = EnergyVAD(RATE, threshold_db=-40.0)
    events = feed(vad, np.concatenate([np.zeros(RATE // 2, dtype=np.int16), level]), 960)
    assert [e.kind for e in events] == (["speech_started"] if speech else [])
    if speech:
        assert events[0].onset_ms == pytest.approx(500.0)


def test_loud_noise_is_speech_to_an_energy_vad() -> None:
    vad = EnergyVAD(RATE)
    events = feed(vad, np.concatenate([noise(1000, -80), noise(400, -20), noise(1000, -80)]), 480)
    assert [e.kind for e in events] == ["speech_started", "speech_stopped"]
    assert events[0].onset_ms == pytest.approx(1000, abs=10)


def test_short_click_does_not_start_speech() -> None:
    quiet = np.zeros(RATE, dtype=np.int16)
    click = noise(60, -10.0, seed=3)
    vad = EnergyVAD(RATE, min_speech_ms=100)
    assert feed(vad, np.concatenate([quiet, click, quiet]), 480) == []
    longer = noise(150, -10.0, seed=3)
    vad = EnergyVAD(RATE, min_speech_ms=100)
    assert [e.kind for e in vad.process(np.concatenate([quiet, longer, quiet]))] == [
        "speech_started",
        "speech_stopped",
    ]


def test_threshold_controls_sensitivity() -> None:
    x = np.concatenate(
        [np.zeros(RATE, dtype=np.int16), noise(500, -45.0), np.zeros(RATE, dtype=np.int16)]
    )
    assert EnergyVAD(RATE, threshold_db=threshold_to_db(0.5)).process(x) == []
    assert len(EnergyVAD(RATE, threshold_db=threshold_to_db(0.3)).process(x)) == 2


def test_flush_closes_open_speech() -> None:
    x, _, _ = padded_speech(tail_ms=100)
    vad = EnergyVAD(RATE)
    events = vad.process(x)
    assert [e.kind for e in events] == ["speech_started"]
    assert vad.in_speech
    (stopped,) = vad.flush()
    assert stopped.kind == "speech_stopped"
    assert stopped.at_ms == pytest.approx(len(x) * 1000 / RATE)
    assert stopped.onset_ms <= stopped.at_ms
    assert vad.flush() == []


def test_telephony_8khz_ulaw_speech() -> None:
    x24, onset, offset = padded_speech()
    x8 = ulaw_decode(ulaw_encode(resample(x24, RATE, 8000)))
    events = feed(EnergyVAD(8000), x8, 160)
    assert [e.kind for e in events] == ["speech_started", "speech_stopped"]
    assert abs(events[0].onset_ms - onset) <= 60
    assert abs(events[1].onset_ms - offset) <= 60


def test_odd_window_rate_keeps_exact_timeline() -> None:
    x, onset, _ = padded_speech(rate=22050)
    vad = EnergyVAD(22050)
    events = feed(vad, x, 441)
    assert abs(events[0].onset_ms - onset) <= 60
    assert vad.position_ms == pytest.approx(len(x) * 1000 / 22050)


def test_configure_and_reset_keep_or_restart_timeline() -> None:
    x, _, _ = padded_speech()
    vad = EnergyVAD(RATE)
    vad.process(x[: RATE // 2])
    vad.configure(min_silence_ms=200)
    assert vad.min_silence_ms == 200
    rest = vad.process(x[RATE // 2 :])
    assert [e.kind for e in rest] == ["speech_started", "speech_stopped"] * 2
    vad.reset()
    assert vad.position_ms == 0
    assert not vad.in_speech
    with pytest.raises(ValueError):
        vad.configure(min_speech_ms=-1)


def test_rejects_wrong_input() -> None:
    vad = EnergyVAD(RATE)
    with pytest.raises(ValueError, match="mono int16"):
        vad.process(np.zeros((10, 2), dtype=np.int16))
    with pytest.raises(ValueError, match="mono int16"):
        vad.process(np.zeros(10, dtype=np.float32))
    with pytest.raises(ValueError):
        EnergyVAD(100)
    assert vad.process(np.zeros(0, dtype=np.int16)) == []
