"""Loading the caller's WAV for `vocalis run`, with errors a user can act on.

Why: "bad WAV" must be one sentence (missing file, not a WAV, 8/24/32-bit, empty), not a
`wave.Error` traceback; and the runtime wants mono int16, so stereo is mixed down here once.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from vocalis.app.errors import UsageError
from vocalis.audio.frame import AudioFrame
from vocalis.audio.wav import read_wav


def load_caller_wav(path: Path) -> AudioFrame:
    """The WAV as one mono int16 frame at its own sample rate."""
    if not path.is_file():
        raise UsageError(f"input WAV not found: {path}")
    try:
        frame = read_wav(path)
    except (wave.Error, EOFError) as exc:
        raise UsageError(f"{path} is not a readable WAV file ({exc})") from exc
    except ValueError as exc:
        raise UsageError(f"{path}: {exc}") from exc
    if frame.samples.shape[0] == 0:
        raise UsageError(f"{path} contains no audio")
    if frame.channels == 1:
        return frame
    mixed = frame.samples.astype(np.int32).mean(axis=1).round().astype(np.int16)
    return AudioFrame(mixed, frame.sample_rate)
