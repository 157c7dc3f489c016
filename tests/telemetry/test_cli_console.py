"""`vocalis run` with `OTEL_TRACES_EXPORTER=console` prints the call's spans; unset, none.

Two real `vocalis run` subprocesses on the same WAV and scenario (the embedded sim-server),
started together: one with the console exporter, one with every `OTEL_*` variable removed.
The traced run's trace id is the one in its history.json, events.jsonl and timeline.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from telemetry_support import REPO, caller_wav

pytestmark = pytest.mark.timeout(150)


def _start(out: Path, wav: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    args = [
        sys.executable, "-m", "vocalis.cli", "run", "examples/assistant_with_tools.py:agent",
        "--input", str(wav), "--offline",
        "--scenario", "examples/scenarios/preamble_tool_answer.yaml",
        "--history", str(out / "history.json"), "--events", str(out / "events.jsonl"),
        "--timeline", str(out / "timeline.html"), "--max-seconds", "60", *extra,
    ]  # fmt: skip
    return subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env
    )


def _spans(stdout: str) -> list[dict[str, Any]]:
    """The JSON objects the console exporter printed between the CLI's own lines."""
    decoder = json.JSONDecoder()
    spans = []
    for match in re.finditer(r"^\{$", stdout, re.MULTILINE):
        obj, _ = decoder.raw_decode(stdout, match.start())
        spans.append(obj)
    return spans


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str, str]]:
    wav = caller_wav(tmp_path_factory.mktemp("wav"))
    quiet = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    envs = {"console": {**quiet, "OTEL_TRACES_EXPORTER": "console"}, "unset": quiet}
    procs = {}
    for name, env in envs.items():
        out = tmp_path_factory.mktemp(name)
        procs[name] = (out, _start(out, wav, env, "--log-format", "json", "-vv"))
    results = {}
    for name, (out, proc) in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        results[name] = (out, stdout, stderr)
    return results


def test_console_exporter_prints_the_calls_spans(
    runs: dict[str, tuple[Path, str, str]],
) -> None:
    out, stdout, stderr = runs["console"]
    spans = _spans(stdout)
    names = {s["name"] for s in spans}
    assert names == {
        "vocalis.call",
        "vocalis.provider.connection",
        "vocalis.user_turn",
        "vocalis.response",
        "vocalis.assistant_message",
        "vocalis.tool_call",
    }
    [call] = [s for s in spans if s["name"] == "vocalis.call"]
    assert call["parent_id"] is None
    assert call["resource"]["attributes"]["service.name"] == "vocalis"
    trace_ids = {s["context"]["trace_id"] for s in spans}
    assert trace_ids == {call["context"]["trace_id"]}
    [tool] = [s for s in spans if s["name"] == "vocalis.tool_call"]
    assert tool["attributes"]["gen_ai.tool.name"] == "get_weather"

    # The same id in the call's files, without the 0x prefix.
    trace_id = call["context"]["trace_id"].removeprefix("0x")
    history = json.loads((out / "history.json").read_text())
    assert history["trace_id"] == trace_id
    first_event = json.loads((out / "events.jsonl").read_text().splitlines()[0])
    assert first_event == {"t": 0.0, "type": "trace", "trace_id": trace_id}
    assert f'data-trace-id="{trace_id}"' in (out / "timeline.html").read_text()

    # The provider client's JSON log records made during the call carry the same trace id.
    client_logs = [
        json.loads(line)
        for line in stderr.splitlines()
        if '"logger": "vocalis.providers.openai' in line
    ]
    traced = [r for r in client_logs if "trace_id" in r]
    assert traced and {r["trace_id"] for r in traced} == {trace_id}
    # (a record after the call span ended, e.g. the socket's final close, has none)


def test_unset_prints_no_spans_and_stamps_no_trace(
    runs: dict[str, tuple[Path, str, str]],
) -> None:
    out, stdout, stderr = runs["unset"]
    assert "vocalis run" in stdout and "agent" in stdout  # the run itself printed as usual
    assert _spans(stdout) == []
    assert "trace_id" not in json.loads((out / "history.json").read_text())
    assert '"type": "trace"' not in (out / "events.jsonl").read_text()
    assert "data-trace-id" not in (out / "timeline.html").read_text()
    assert '"logger": "vocalis.providers.openai' in stderr and "trace_id" not in stderr


def test_an_unsupported_exporter_stops_the_command_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_TRACES_EXPORTER"] = "jaeger"
    result = subprocess.run(
        [sys.executable, "-m", "vocalis.cli", "run", "examples/minimal_agent.py:agent",
         "--input", str(tmp_path / "missing.wav"), "--offline"],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=60,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "vocalis run: error: OTEL_TRACES_EXPORTER='jaeger': unsupported exporter jaeger; "
        "use otlp, console or none (comma-separated)"
    ]
