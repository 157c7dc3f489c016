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


def _riff(tag: int, bits: int, channels: int, rate: int, payload: bytes) -> bytes:
    """A WAV file written by hand (the stdlib cannot write float or extensible headers)."""
    import struct

    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_wav_reads_float_and_other_pcm_widths_as_int16() -> None:
    ref = np.array([0, 16384, -16384, 32767, -32767], dtype=np.int16)
    as_float = (ref.astype(np.float32) / 32767.0).tobytes()
    frame = read_wav(_riff(3, 32, 1, 44100, as_float))  # Audacity's default export
    assert frame.sample_rate == 44100 and np.array_equal(frame.samples, ref)
    doubled = read_wav(_riff(3, 64, 1, 8000, (ref.astype(np.float64) / 32767.0).tobytes()))
    assert np.array_equal(doubled.samples, ref)
    loud = read_wav(_riff(3, 32, 1, 8000, np.array([1.5, -2.0], np.float32).tobytes()))
    assert loud.samples.tolist() == [32767, -32767]  # clipped, not wrapped
    as_24 = b"".join((int(v) * 256).to_bytes(3, "little", signed=True) for v in ref)
    assert np.array_equal(read_wav(_riff(1, 24, 1, 8000, as_24)).samples, ref)
    as_32 = (ref.astype(np.int32) << 16).tobytes()
    assert np.array_equal(read_wav(_riff(1, 32, 1, 8000, as_32)).samples, ref)
    as_8 = bytes([128, 192, 64])
    assert read_wav(_riff(1, 8, 1, 8000, as_8)).samples.tolist() == [0, 16384, -16384]
    stereo = read_wav(_riff(3, 32, 2, 8000, as_float[:16]))
    assert stereo.channels == 2 and stereo.samples.shape == (2, 2)


def test_wav_rejects_what_it_cannot_convert_with_the_format_named() -> None:
    import wave

    with pytest.raises(ValueError, match="unsupported WAV format 85"):
        read_wav(_riff(85, 16, 1, 8000, b"\0\0"))  # MP3 in a WAV container
    with pytest.raises(wave.Error):
        read_wav(b"not a wav file at all")


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
