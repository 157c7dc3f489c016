"""`vocalis console` end to end, with a WAV file standing in for the sound card.

The command's own path runs unchanged — agent reference, endpoint rule (embedded sim-server),
device start, live transcript, the session until the caller hangs up — only the
`ConsoleTransport` is replaced by a `FileTransport` that "speaks" a recorded question and
hangs up once the agent has been quiet.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import pytest
from cli_support import REPO

from vocalis.app import console_run
from vocalis.audio.espeak import synthesize
from vocalis.audio.frame import AudioFrame
from vocalis.transports.file import FileTransport
from vocalis.utils.clock import Clock

pytestmark = pytest.mark.timeout(90)


class WavConsole(FileTransport):
    """A "sound card" whose microphone plays a WAV and whose speaker is a paced sink."""

    started = 0
    audio: AudioFrame

    def __init__(self, clock: Clock, **_: Any) -> None:
        super().__init__(self.audio, clock=clock, idle_hangup_s=2.0, max_tail_s=30.0)

    async def start(self) -> None:
        WavConsole.started += 1


def test_console_talks_until_the_caller_hangs_up(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rate = 24000
    speech = synthesize("What is the weather in Paris?", sample_rate=rate)
    pause = np.zeros(rate // 2, np.int16)
    WavConsole.audio = AudioFrame(np.concatenate([pause, speech.samples, pause]), rate)
    monkeypatch.setattr(console_run, "ConsoleTransport", WavConsole)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    args = argparse.Namespace(
        agent_ref=str(REPO / "examples/assistant_with_tools.py:agent"),
        input_device=None,
        output_device=None,
        realtime_url=None,
        model=None,
        offline=True,
        scenario=REPO / "examples/scenarios/preamble_tool_answer.yaml",
        pace=4.0,
    )

    assert console_run.console_command(args) == 0

    out = capsys.readouterr().out
    assert WavConsole.started == 1
    assert "on embedded sim-server (offline" in " ".join(out.split())  # rich wraps at 80
    # The live transcript (log mode: not a terminal) shows the whole scripted turn, played.
    assert "caller  What's the weather in Paris today?" in out
    assert "get_weather" in out
    assert out.count("[played (") == 2, out
