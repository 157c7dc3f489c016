"""Shared fixtures: the demo and a `vocalis run` are each executed once per test session.

Both are real subprocesses (`python -m vocalis.cli ...`), exactly what a user types, against
the embedded sim-server; several tests then read their output files. They start together
(each is mostly real-time waiting) and each fixture waits only for its own process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_support import REPO, CliRun


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vocalis.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )


def finish(
    args: list[str], proc: subprocess.Popen[str], timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        proc.kill()
    return subprocess.CompletedProcess(args, proc.returncode, out, err)


@pytest.fixture(scope="session")
def background(
    tmp_path_factory: pytest.TempPathFactory, caller_wav: Path
) -> dict[str, tuple[Path, list[str], subprocess.Popen[str]]]:
    """Start the demo and the run at once; `demo_run` / `wav_run` collect them."""
    demo_out = tmp_path_factory.mktemp("demo")
    run_out = tmp_path_factory.mktemp("run")
    demo_args = ["demo", "--out", str(demo_out)]
    run_args = [
        "run",
        "examples/assistant_with_tools.py:agent",
        "--input", str(caller_wav),
        "--offline",
        "--scenario", "examples/scenarios/preamble_tool_answer.yaml",
        "--record", str(run_out / "run.wav"),
        "--history", str(run_out / "history.json"),
        "--events", str(run_out / "events.jsonl"),
        "--timeline", str(run_out / "timeline.html"),
        "--max-seconds", "60",
    ]  # fmt: skip
    return {
        "demo": (demo_out, demo_args, start(*demo_args)),
        "run": (run_out, run_args, start(*run_args)),
    }


@pytest.fixture(scope="session")
def demo_run(background: dict[str, tuple[Path, list[str], subprocess.Popen[str]]]) -> CliRun:
    out, args, proc = background["demo"]
    return CliRun(out, finish(args, proc))


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
def wav_run(background: dict[str, tuple[Path, list[str], subprocess.Popen[str]]]) -> CliRun:
    out, args, proc = background["run"]
    return CliRun(out, finish(args, proc))
