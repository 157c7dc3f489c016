"""WAV I/O and fixed-size re-chunking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vocalis.audio import AudioFrame, FrameChunker, read_wav, synthesize, wav_bytes, write_wav


def test_wav_round_trip_file_and_bytes(tmp_path: Path) -> None:
    clip = synthesize("write me to a file", sample_rate=16000)
    path = tmp_path / "speech.wav"
    write_wav(path, clip.to_frame())
    back = read_wav(path)
    assert back.sample_rate == 16000
    assert back.channels == 1
    assert np.array_equal(back.samples, clip.samples)
    stereo = AudioFrame(np.arange(20, dtype=np.int16).reshape(10, 2), 8000, channels=2)
    data = wav_bytes(stereo)
    assert data[:4] == b"RIFF"
    assert np.array_equal(read_wav(data).samples, stereo.samples)


def test_wav_rejects_other_sample_widths(tmp_path: Path) -> None:
    import wave

    path = tmp_path / "u8.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(b"\x80" * 10)
    with pytest.raises(ValueError, match="16-bit"):
        read_wav(path)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2000), max_size=30))
def test_chunker_emits_exact_frames_in_order(sizes: list[int]) -> None:
    total = sum(sizes)
    signal = (np.arange(total) % 30000).astype(np.int16)
    chunker = FrameChunker(480)
    frames: list[np.ndarray] = []
    pos = 0
    for size in sizes:
        frames += chunker.push(signal[pos : pos + size])
        pos += size
    assert all(f.shape == (480,) for f in frames)
    tail = chunker.flush()
    joined = np.concatenate([*frames, tail] if tail is not None else frames or [signal[:0]])
    assert np.array_equal(joined, signal)
    assert chunker.pending == 0


def test_chunker_views_and_padding() -> None:
    chunker = FrameChunker(160, channels=2)
    x = np.ones((400, 2), dtype=np.int16)
    frames = chunker.push(x)
    assert len(frames) == 2
    assert all(np.shares_memory(f, x) for f in frames)  # no copy for whole frames
    assert chunker.pending == 80
    padded = chunker.flush(pad=True)
    assert padded is not None
    assert padded.shape == (160, 2)
    assert padded[:80].all() and not padded[80:].any()
    assert chunker.flush() is None
    with pytest.raises(TypeError):
        chunker.push(np.zeros(3, dtype=np.float32))
    with pytest.raises(ValueError):
        FrameChunker(0)
