"""Read and write 16-bit PCM WAV files.

Why it exists: the file transport plays and records WAV, the browser test feeds Chromium a
WAV as its fake microphone (``--use-file-for-fake-audio-capture``), and demos save what was
heard. The stdlib ``wave`` module does the container work; this module only maps it onto
:class:`~vocalis.audio.frame.AudioFrame` and rejects formats vocalis does not use.
"""

from __future__ import annotations

import io
import os
import wave

from vocalis.audio.frame import AudioFrame

__all__ = ["read_wav", "wav_bytes", "write_wav"]


def read_wav(source: str | os.PathLike[str] | bytes) -> AudioFrame:
    """Load a 16-bit PCM WAV (path or file bytes) as one frame (samples are read-only)."""
    fh = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
    with fh, wave.open(fh, "rb") as wav:
        width = wav.getsampwidth()
        if width != 2:
            raise ValueError(f"only 16-bit PCM WAV is supported, got {8 * width}-bit samples")
        data = wav.readframes(wav.getnframes())
        return AudioFrame.from_pcm16(data, wav.getframerate(), wav.getnchannels())


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
