"""Shared fixtures: the demo and a `vocalis run` are each executed once per test session.

Both are real subprocesses (`python -m vocalis.cli ...`), exactly what a user types, against
the embedded sim-server; several tests then read their output files.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class CliRun:
    out: Path
    result: subprocess.CompletedProcess[str]


def vocalis(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vocalis.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    out = tmp_path_factory.mktemp("demo")
    return CliRun(out, vocalis("demo", "--out", str(out)))


@pytest.fixture(scope="session")
def caller_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from vocalis.audio.espeak import synthesize
    from vocalis.audio.frame import AudioFrame
    from vocalis.audio.wav import write_wav

    rate = 16000
    speech = synthesize("What is the weather in Paris?", voice="en-us+f3", sample_rate=rate)
    samples = np.concatenate(
        [np.zeros(rate // 2, np.int16), speech.samples, np.zeros(rate, np.int16)]
    )
    path = tmp_path_factory.mktemp("caller") / "caller.wav"
    write_wav(path, AudioFrame(samples, rate))
    return path


@pytest.fixture(scope="session")
def wav_run(tmp_path_factory: pytest.TempPathFactory, caller_wav: Path) -> CliRun:
    out = tmp_path_factory.mktemp("run")
    result = vocalis(
        "run",
        "examples/assistant_with_tools.py:agent",
        "--input",
        str(caller_wav),
        "--offline",
        "--scenario",
        "examples/scenarios/preamble_tool_answer.yaml",
        "--record",
        str(out / "run.wav"),
        "--history",
        str(out / "history.json"),
        "--events",
        str(out / "events.jsonl"),
        "--timeline",
        str(out / "timeline.html"),
        "--max-seconds",
        "60",
    )
    return CliRun(out, result)
