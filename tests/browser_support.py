"""Headless Debian Chromium for the browser tests: the binary, its flags, a fake microphone.

Fake microphone from a WAV (`--use-file-for-fake-audio-capture`), no permission prompt, audio
that may start without a user gesture, nothing that talks to the network on its own.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from vocalis.audio.espeak import synthesize
from vocalis.audio.frame import AudioFrame
from vocalis.audio.wav import write_wav

CHROMIUM = os.environ.get("VOCALIS_CHROMIUM", "/usr/bin/chromium")


def chromium_path() -> str:
    """Debian chromium; a missing browser is a failure with the fix, not a silent skip
    (deselect with `-m "not browser"`)."""
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if path is None:
        pytest.fail(f"chromium not found at {CHROMIUM}: run `make chromium`")
    return path


def chromium_args(fake_mic: Path) -> list[str]:
    return [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={fake_mic}",
        "--autoplay-policy=no-user-gesture-required",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
    ]


def barge_in_wav(path: Path) -> Path:
    """A fake microphone: the caller asks, stays quiet while the agent answers, then barges
    in ("Wait, stop please.") 8 s into the file."""
    rate = 48000
    question = synthesize(
        "Can you tell me when the store opens on Sunday?", voice="en-us+f3", sample_rate=rate
    ).samples
    stop = synthesize("Wait, stop please.", voice="en-us+f3", sample_rate=rate).samples
    audio = np.zeros(int(30 * rate), dtype=np.int16)
    q0 = int(0.5 * rate)
    audio[q0 : q0 + question.shape[0]] = question
    b0 = int(8.0 * rate)
    audio[b0 : b0 + stop.shape[0]] = stop
    write_wav(path, AudioFrame(audio, rate))
    return path
