"""Every example runs offline on the embedded sim-server, as its docstring says (and the
testing example of docs/testing-with-sim-server.md passes).

The four `vocalis run` subprocesses run side by side (each is mostly real-time waiting), so
the file costs about one run's wall time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import REPO

from vocalis.app.agent_ref import load_agent
from vocalis.runtime.agent import Agent

EXAMPLES: dict[str, list[str]] = {
    "minimal_agent.py": [],
    "assistant_with_tools.py": ["--scenario", "examples/scenarios/preamble_tool_answer.yaml"],
    "preamble_agent.py": [
        "--scenario",
        "examples/scenarios/preamble_tool_answer.yaml",
        "--model",
        "gpt-realtime-2",
    ],
    "telephony_agent.py": [],
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_is_an_agent(name: str) -> None:
    agent = load_agent(str(REPO / "examples" / name))
    assert isinstance(agent, Agent) and agent.instructions
    for tool in agent.tools:
        assert tool.spec.parameters["type"] == "object"


def test_every_example_runs_offline(tmp_path: Path) -> None:
    caller = tmp_path / "caller.wav"
    subprocess.run(
        [
            sys.executable,
            "examples/make_caller_wav.py",
            "What is the weather in Paris?",
            str(caller),
            "--gap",
            "1",
        ],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=60,
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    # The testing example (docs/testing-with-sim-server.md) runs alongside.
    docs_tests = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "examples/testing"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    procs = {}
    for name, extra in EXAMPLES.items():
        history = tmp_path / f"{name}.json"
        procs[name] = (
            history,
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "vocalis.cli",
                    "run",
                    f"examples/{name}:agent",
                    "--input",
                    str(caller),
                    "--history",
                    str(history),
                    "--max-seconds",
                    "60",
                    "--quiet",
                    *extra,
                ],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
    for name, (history, proc) in procs.items():
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, f"{name}: {out}{err}"
        items = json.loads(history.read_text())["items"]
        spoken = [i for i in items if i["role"] == "assistant" and i["type"] == "message"]
        assert spoken and all(i["played_ms"] > 0 for i in spoken), name
        assert any(i["role"] == "user" for i in items), name
    tools = json.loads(procs["assistant_with_tools.py"][0].read_text())["items"]
    assert [i["name"] for i in tools if i["type"] == "function_call"] == ["get_weather"]
    greeting = json.loads(procs["telephony_agent.py"][0].read_text())["items"][0]
    # The caller's WAV may barge into the greeting (earlier on a loaded machine): what is kept
    # is a heard prefix of the configured greeting, never other words.
    assert greeting["role"] == "assistant" and greeting["text"].startswith("Chez")
    assert "Chez Vocalis, good evening! How can I help?".startswith(greeting["text"].strip())
    out, _ = docs_tests.communicate(timeout=120)
    assert docs_tests.returncode == 0, out
    assert " passed" in out and "failed" not in out and "error" not in out
