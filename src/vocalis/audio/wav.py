"""Read WAV files (PCM 8/16/24/32-bit, 32/64-bit float) and write 16-bit PCM WAV.

Why it exists: the file transport plays and records WAV, the browser test feeds Chromium a
WAV as its fake microphone (``--use-file-for-fake-audio-capture``), and demos save what was
heard. Writing uses the stdlib ``wave`` module. Reading parses the RIFF chunks itself because
``wave`` (Python 3.11) refuses IEEE-float data ("unknown format: 3") — and 32-bit float is
what Audacity and most editors export by default; a user's recording must just work. Every
format is converted to int16 once, on load (float is clipped to [-1, 1]).
"""

from __future__ import annotations

import io
import os
import struct
import wave

import numpy as np

from vocalis.audio.frame import AudioFrame

_PCM = 1
_FLOAT = 3
_EXTENSIBLE = 0xFFFE

__all__ = ["read_wav", "wav_bytes", "write_wav"]


def read_wav(source: str | os.PathLike[str] | bytes) -> AudioFrame:
    """Load a WAV (path or file bytes) as one int16 frame.

    Raises ``wave.Error`` for a file that is not a RIFF/WAVE container and ``ValueError`` for a
    sample format vocalis cannot convert (the message names the format found).
    """
    if isinstance(source, bytes):
        data = source
    else:
        with open(source, "rb") as fh:
            data = fh.read()
    fmt, payload = _chunks(data)
    tag, channels, rate, bits = _format(fmt)
    samples = _to_int16(payload, tag, bits, channels)
    return AudioFrame(samples.reshape(-1, channels) if channels > 1 else samples, rate, channels)


def _chunks(data: bytes) -> tuple[bytes, bytes]:
    """The ``fmt `` and ``data`` chunks of a RIFF/WAVE file."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise wave.Error("file does not start with RIFF id")
    fmt = payload = None
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = data[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            fmt = body
        elif cid == b"data":
            payload = body
        pos += 8 + size + (size & 1)  # chunks are word-aligned
    if fmt is None or len(fmt) < 16:
        raise wave.Error("fmt chunk missing")
    if payload is None:
        raise wave.Error("data chunk missing")
    return fmt, payload


def _format(fmt: bytes) -> tuple[int, int, int, int]:
    tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == _EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack_from("<H", fmt, 24)[0]  # the sub-format GUID's first two bytes
    if channels < 1 or rate < 1:
        raise ValueError(f"invalid WAV header: {channels} channels at {rate} Hz")
    return tag, channels, rate, bits


def _to_int16(payload: bytes, tag: int, bits: int, channels: int) -> np.ndarray:
    width = bits // 8
    usable = len(payload) - len(payload) % (width * channels) if width else 0
    raw = payload[:usable]
    if tag == _FLOAT and bits in (32, 64):
        values = np.frombuffer(raw, dtype="<f4" if bits == 32 else "<f8").astype(np.float64)
        scaled: np.ndarray = np.round(np.clip(values, -1.0, 1.0) * 32767.0)
        return scaled.astype(np.int16)
    if tag != _PCM:
        raise ValueError(f"unsupported WAV format {tag} (PCM or IEEE float expected)")
    if bits == 16:
        return np.frombuffer(raw, dtype="<i2").copy()
    if bits == 8:  # unsigned, centred on 128
        return ((np.frombuffer(raw, dtype=np.uint8).astype(np.int16) - 128) << 8).astype(np.int16)
    if bits == 24:
        triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        return (triples[:, 2].astype(np.int8).astype(np.int16) << 8) | triples[:, 1]
    if bits == 32:
        return (np.frombuffer(raw, dtype="<i4") >> 16).astype(np.int16)
    raise ValueError(f"unsupported WAV sample size: {bits}-bit PCM")


def wav_bytes(frame: AudioFrame) -> bytes:
    """The frame as a complete 16-bit PCM WAV file in memory."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(frame.channels)
        wav.setsampwidth(2)
        wav.setframerate(frame.sample_rate)
        wav.writeframes(frame.to_pcm16())
    return buf.getvalue()


def write_wav(path: str | os.PathLike[str], frame: AudioFrame) -> None:
    """Write the frame to ``path`` as a 16-bit PCM WAV file."""
    with open(path, "wb") as fh:
        fh.write(wav_bytes(frame))
