"""Headless Debian Chromium for the browser tests: the binary, its flags, a fake microphone.

Fake microphone from a WAV (`--use-file-for-fake-audio-capture`), no permission prompt, audio
that may start without a user gesture, nothing that talks to the network on its own.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from vocalis.audio.espeak import synthesize
from vocalis.audio.frame import AudioFrame
from vocalis.audio.wav import write_wav

if TYPE_CHECKING:  # playwright is imported when a browser starts, not at collection
    from playwright.async_api import Browser

    from vocalis.sim.server import SimServer

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


def question_wav(path: Path, *, tail_s: float = 0.5) -> Path:
    """A fake microphone: 0.2 s of silence, "Hi, what are your opening hours?", then silence."""
    clip = synthesize("Hi, what are your opening hours?", voice="en-us+f3", sample_rate=48000)
    silence = np.zeros(int(48000 * tail_s), np.int16)
    audio = np.concatenate([np.zeros(9600, np.int16), clip.samples, silence])
    write_wav(path, AudioFrame(audio, 48000))
    return path


@asynccontextmanager
async def launched_chromium(fake_mic: Path) -> AsyncIterator[Browser]:
    """Headless Chromium (a playwright `Browser`) whose microphone plays `fake_mic`."""
    from playwright import async_api as playwright_api

    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=chromium_path(), args=chromium_args(fake_mic), headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()


def truncates(sim: SimServer) -> list[dict[str, Any]]:
    """Every `conversation.item.truncate` the provider (all its connections) received."""
    return [
        event
        for session in sim.sessions
        for event in session.client_events
        if event["type"] == "conversation.item.truncate"
    ]


async def until(predicate: Callable[[], bool]) -> None:
    """Poll a condition fed by the page's playback reports (wrap in a timeout)."""
    while True:
        if predicate():
            return
        await asyncio.sleep(0.01)


STORE_ANSWER = (
    "On Sunday the store opens at ten in the morning and closes at six in the evening, "
    "and on public holidays it opens one hour later than usual, at eleven."
)


def store_scenario(name: str) -> dict[str, Any]:
    """The sim-server's side of a `barge_in_wav` call: a preamble and a long answer (the
    caller cuts it), then a short reply to the barge-in."""
    return {
        "name": name,
        "seed": 3,
        "responses": [
            {
                "user_transcript": "Can you tell me when the store opens on Sunday?",
                "ordering": "overlapping",
                "items": [
                    {"say": "Sure, one moment.", "phase": "commentary"},
                    {"say": STORE_ANSWER, "phase": "final_answer"},
                ],
            },
            {"say": "Of course, I will stop."},
        ],
    }
