"""One-shot and streaming resampling."""

from __future__ import annotations

import numpy as np
import pytest

from vocalis.audio import StreamResampler, resample


def sine(freq: float, rate: int, ms: int, amp: float = 12000.0) -> np.ndarray:
    t = np.arange(rate * ms // 1000) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def dominant_freq(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


def test_one_shot_lengths_and_frequency() -> None:
    x = sine(440, 8000, 1000)
    y = resample(x, 8000, 24000)
    assert y.dtype == np.int16
    assert len(y) == 24000
    assert abs(dominant_freq(y, 24000) - 440) <= 2
    z = resample(y, 24000, 16000)
    assert len(z) == 16000
    assert abs(dominant_freq(z, 16000) - 440) <= 2


def test_equal_rates_is_identity() -> None:
    x = sine(300, 24000, 20)
    assert resample(x, 24000, 24000) is x
    stream = StreamResampler(24000, 24000)
    assert stream.push(x) is x
    assert stream.flush().size == 0


@pytest.mark.parametrize(
    ("src", "dst"), [(8000, 24000), (24000, 8000), (22050, 24000), (48000, 24000)]
)
def test_streaming_20ms_chunks_keeps_duration_and_frequency(src: int, dst: int) -> None:
    x = sine(440, src, 1000)
    stream = StreamResampler(src, dst)
    chunk = src // 50
    parts = [stream.push(x[i : i + chunk]) for i in range(0, len(x), chunk)]
    parts.append(stream.flush())
    y = np.concatenate(parts)
    assert y.dtype == np.int16
    assert abs(len(y) * 1000 / dst - 1000) <= 1
    assert abs(dominant_freq(y, dst) - 440) <= 2


def test_streaming_matches_one_shot_without_clicks() -> None:
    x = sine(440, 8000, 500)
    stream = StreamResampler(8000, 24000)
    parts = [stream.push(x[i : i + 160]) for i in range(0, len(x), 160)]
    parts.append(stream.flush())
    streamed = np.concatenate(parts).astype(np.int32)
    whole = resample(x, 8000, 24000).astype(np.int32)
    assert len(streamed) == len(whole)
    # interior samples agree closely: no discontinuities at the 20 ms boundaries
    interior = slice(240, len(whole) - 240)
    assert np.abs(streamed[interior] - whole[interior]).max() <= 2
    # and the signal has no jumps larger than a 440 Hz sine can make between samples
    max_step = 12000 * 2 * np.pi * 440 / 24000 * 1.1
    assert np.abs(np.diff(streamed[interior])).max() <= max_step


def test_stream_reusable_after_flush_and_stereo() -> None:
    stream = StreamResampler(16000, 8000, channels=2)
    x = np.stack([sine(200, 16000, 100), sine(300, 16000, 100)], axis=1)
    out = np.concatenate([stream.push(x), stream.flush()])
    assert out.shape == (800, 2)
    again = np.concatenate([stream.push(x), stream.flush()])
    assert again.shape == (800, 2)
    assert stream.flush().shape == (0, 2)


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        StreamResampler(0, 8000)
    with pytest.raises(ValueError):
        StreamResampler(8000, 16000, channels=0)
    with pytest.raises(TypeError, match="int16"):
        resample(np.zeros(10, dtype=np.float32), 8000, 16000)
