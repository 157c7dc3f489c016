"""AudioFrame and the sample/byte/millisecond helpers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from vocalis.audio import AudioFrame, ms_to_samples, pcm16_bytes_to_ms, samples_to_ms


def test_ms_helpers_round_trip() -> None:
    assert ms_to_samples(20, 24000) == 480
    assert ms_to_samples(20, 8000) == 160
    assert ms_to_samples(10, 22050) == 220  # 220.5 rounds to even
    assert samples_to_ms(480, 24000) == 20.0
    for n in (0, 1, 479, 480, 22049):
        assert ms_to_samples(samples_to_ms(n, 22050), 22050) == n
    assert pcm16_bytes_to_ms(960, 24000) == 20.0
    assert pcm16_bytes_to_ms(48000) == 1000.0
    assert pcm16_bytes_to_ms(640, 8000, channels=2) == 20.0


def test_pcm16_round_trip_is_little_endian_and_zero_copy() -> None:
    data = bytes([0x01, 0x00, 0xFF, 0x7F, 0x00, 0x80])
    frame = AudioFrame.from_pcm16(data, 24000)
    assert frame.samples.tolist() == [1, 32767, -32768]
    assert frame.samples.base is not None  # a view over data, not a copy
    assert not frame.samples.flags.writeable
    assert frame.to_pcm16() == data
    assert frame.num_samples == 3
    assert frame.nbytes == 6


def test_from_pcm16_accepts_memoryview_and_stereo() -> None:
    raw = np.array([[1, -1], [2, -2], [3, -3]], dtype=np.int16).tobytes()
    frame = AudioFrame.from_pcm16(memoryview(raw), 16000, channels=2)
    assert frame.samples.shape == (3, 2)
    assert frame.samples[:, 1].tolist() == [-1, -2, -3]
    assert frame.to_pcm16() == raw


@pytest.mark.parametrize(("nbytes", "channels"), [(3, 1), (1, 1), (6, 2)])
def test_from_pcm16_rejects_partial_samples(nbytes: int, channels: int) -> None:
    with pytest.raises(ValueError, match="PCM16 data"):
        AudioFrame.from_pcm16(b"\x00" * nbytes, 24000, channels=channels)


def test_duration_and_slice() -> None:
    frame = AudioFrame(np.arange(24000, dtype=np.int16), 24000)
    assert frame.duration_ms == 1000.0
    part = frame.slice_ms(100, 120)
    assert part.num_samples == 480
    assert part.samples[0] == 2400
    assert np.shares_memory(part.samples, frame.samples)
    assert frame.slice_ms(900, 5000).duration_ms == 100.0
    assert frame.slice_ms(2000, 3000).num_samples == 0
    assert frame.slice_ms(500).duration_ms == 500.0
    with pytest.raises(ValueError):
        frame.slice_ms(10, 5)
    with pytest.raises(ValueError):
        frame.slice_ms(-1, 5)


def test_silence() -> None:
    mono = AudioFrame.silence(20, 8000)
    assert mono.samples.shape == (160,)
    assert not mono.samples.any()
    stereo = AudioFrame.silence(10, 48000, channels=2)
    assert stereo.samples.shape == (480, 2)
    assert stereo.duration_ms == 10.0


def test_concat() -> None:
    a = AudioFrame(np.ones(10, dtype=np.int16), 8000)
    b = AudioFrame(np.full(5, 2, dtype=np.int16), 8000)
    joined = AudioFrame.concat([a, b])
    assert joined.samples.tolist() == [1] * 10 + [2] * 5
    with pytest.raises(ValueError, match="different formats"):
        AudioFrame.concat([a, AudioFrame(np.ones(3, dtype=np.int16), 16000)])


def test_validation_errors_are_clear() -> None:
    with pytest.raises(TypeError, match="int16"):
        AudioFrame(np.zeros(4, dtype=np.float32), 24000)
    with pytest.raises(ValueError, match="shape"):
        AudioFrame(np.zeros((4, 1), dtype=np.int16), 24000)
    with pytest.raises(ValueError, match="2-channel"):
        AudioFrame(np.zeros(4, dtype=np.int16), 24000, channels=2)
    with pytest.raises(ValueError, match="sample_rate"):
        AudioFrame(np.zeros(4, dtype=np.int16), 0)
    with pytest.raises(ValueError, match="channels"):
        AudioFrame(np.zeros(4, dtype=np.int16), 8000, channels=0)
    with pytest.raises(TypeError, match="numpy"):
        AudioFrame([1, 2], 8000)  # type: ignore[arg-type]


def test_frame_is_frozen() -> None:
    frame = AudioFrame.silence(10, 8000)
    with pytest.raises(AttributeError):
        frame.sample_rate = 16000  # type: ignore[misc]


def test_to_mono_mixes_channels_by_rounded_mean_and_keeps_mono_frames() -> None:
    stereo = AudioFrame(
        np.array([[100, 301], [-32768, 32767], [-50, -151]], dtype=np.int16), 8000, 2
    )
    mono = stereo.to_mono()
    assert mono.channels == 1 and mono.sample_rate == 8000
    assert mono.samples.tolist() == [200, 0, -100]
    assert mono.to_mono() is mono


# ---------------------------------------------------------------- validation fast path


def _reference_check(samples: object, sample_rate: object, channels: object) -> None:
    """The validation `AudioFrame` did before its fast path, verbatim (the oracle)."""
    for name, value in (("sample_rate", sample_rate), ("channels", channels)):
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not isinstance(samples, np.ndarray):
        raise TypeError(f"samples must be a numpy int16 array, got {type(samples).__name__}")
    if samples.dtype != np.int16:
        raise TypeError(f"samples must have dtype int16, got {samples.dtype}")
    if channels == 1:
        if samples.ndim != 1:
            raise ValueError(f"mono samples must have shape (n,), got {samples.shape}")
    elif samples.ndim != 2 or samples.shape[1] != channels:
        raise ValueError(f"bad shape {samples.shape}")


class _SubArray(np.ndarray):
    pass


_DTYPES = st.sampled_from([np.int16, np.dtype("<i2"), np.dtype(">i2"), np.int32, np.float32])
_SHAPES = st.sampled_from([(0,), (3,), (4, 1), (4, 2), (2, 3), (1, 1, 2)])
_SAMPLES = st.one_of(
    st.builds(lambda dt, sh: np.zeros(sh, dtype=dt), _DTYPES, _SHAPES),
    st.builds(lambda sh: np.zeros(sh, dtype=np.int16).view(_SubArray), _SHAPES),
    st.builds(lambda sh: np.zeros(sh, dtype=np.int16)[::-1], _SHAPES),  # a strided view
    st.just([0, 1, 2]),
    st.just(b"\x00\x00"),
)
_NUMBERS = st.one_of(
    st.integers(-2, 48000), st.just(True), st.just(False), st.just(24000.0), st.just("24000")
)


@given(samples=_SAMPLES, sample_rate=_NUMBERS, channels=_NUMBERS)
@settings(max_examples=300)
@example(np.zeros(3, np.int16), 24000, True)  # a bool is an int, and True == 1
@example(np.zeros(3, np.int16), True, 1)
@example(np.zeros(3, np.int16), 24000.0, 1)
@example(np.zeros(3, np.dtype(">i2")), 24000, 1)
@example(np.zeros(3, np.int16).view(_SubArray), 24000, 1)
def test_frame_accepts_and_refuses_exactly_what_the_full_checks_did(
    samples: object, sample_rate: object, channels: object
) -> None:
    try:
        _reference_check(samples, sample_rate, channels)
    except (TypeError, ValueError) as exc:
        with pytest.raises(type(exc)):
            AudioFrame(samples, sample_rate, channels)  # type: ignore[arg-type]
    else:
        frame = AudioFrame(samples, sample_rate, channels)  # type: ignore[arg-type]
        assert frame.samples is samples
