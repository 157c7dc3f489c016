"""Ctrl-C during `vocalis run`: the outputs are still written (what was heard until then),
the exit code is 130, and a message cut by the stop is not called a barge-in."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from cli_support import REPO

from vocalis.app.reports.live_view import LiveTranscript, render_line

LONG = (
    "responses:\n  - say: This is a very long answer that keeps going and going, so that the "
    "caller has plenty of time to stop the run in the middle of it.\n"
)


def test_ctrl_c_writes_the_history_and_exits_130(tmp_path: Path, caller_wav: Path) -> None:
    scenario = tmp_path / "long.yaml"
    scenario.write_text(LONG)
    history = tmp_path / "history.json"
    args = ["run", "examples/minimal_agent.py", "--input", str(caller_wav)]
    args += ["--scenario", str(scenario), "--history", str(history)]
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vocalis.cli", *args],
        cwd=REPO,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    while not proc.stdout.readline().startswith("caller"):  # the caller's turn has ended
        pass
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "stopped (Ctrl-C)" in err
    items = json.loads(history.read_text())["items"]
    assert items[0]["role"] == "user"
    for item in items[1:]:
        assert item["interrupted"] and item["played_ms"] < 8000  # cut by the stop
    assert "interrupted at" not in out  # the live view does not call it a barge-in


def test_a_message_cut_by_the_hang_up_is_labelled_so() -> None:
    view = LiveTranscript()
    view.agent_message_ended("a1", interrupted=True, played_ms=820, heard_text="It is")
    view.hung_up = True
    view.agent_message_ended("a2", interrupted=True, played_ms=500, heard_text="And then")
    first, second = (render_line(line).plain for line in view.lines)
    assert "[interrupted at 820 ms]" in first
    assert "[cut at 500 ms by the hang-up]" in second
