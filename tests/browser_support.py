"""Headless Debian Chromium for the browser tests: the binary and its flags.

Fake microphone from a WAV (`--use-file-for-fake-audio-capture`), no permission prompt, audio
that may start without a user gesture, nothing that talks to the network on its own.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

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
