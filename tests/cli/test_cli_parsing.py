"""Every command's --help is complete; user errors are one stderr line and exit code 2."""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_support import REPO

from vocalis import cli
from vocalis.app.endpoint import DEFAULT_MODEL, OPENAI_URL, choose_endpoint
from vocalis.app.errors import UsageError
from vocalis.audio.frame import AudioFrame
from vocalis.audio.wav import write_wav

EXPECTED_FLAGS = {
    "demo": ["--out", "--pace", "--barge-in-ms", "--max-seconds", "--quiet"],
    "run": [
        "AGENT_REF",
        "--input",
        "--realtime-url",
        "--model",
        "--record",
        "--history",
        "--events",
        "--timeline",
        "--max-seconds",
        "--scenario",
        "--offline",
    ],
    "serve": ["AGENT_REF", "--playground", "--twilio", "--host", "--port", "--realtime-url"],
    "console": ["AGENT_REF", "--input-device", "--output-device", "--realtime-url", "--model"],
}


def help_text(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("command", sorted(EXPECTED_FLAGS))
def test_help_lists_every_flag_with_a_description(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_text(command, capsys)
    for flag in EXPECTED_FLAGS[command]:
        assert flag in text, f"{command} --help misses {flag}"
    parser = cli.build_parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[
        command
    ]
    for action in sub._actions:
        assert action.help, f"{command}: {action.option_strings or action.dest} has no help"


def test_top_level_help_lists_all_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    for command in ("demo", "run", "serve", "console", "sim-server"):
        assert command in text


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def wav(tmp_path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    path = tmp_path / "caller.wav"
    write_wav(path, AudioFrame(samples.astype(np.int16), rate, 1 if samples.ndim == 1 else 2))
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vocalis.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def test_bad_agent_ref_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = wav(tmp_path, np.zeros(1600))
    result = run_cli("run", str(tmp_path / "missing.py:agent"), "--input", str(path), "--offline")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"vocalis run: error: agent file not found: {tmp_path}/missing.py"
    ]


def test_bad_loop_choice_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    recwarn: pytest.WarningsRecorder,
) -> None:
    monkeypatch.setenv("VOCALIS_LOOP", "bogus")
    assert cli.main(["serve", "examples/minimal_agent.py:agent", "--port", "0"]) == 2
    gc.collect()  # a coroutine built but never run would warn now
    assert not [w for w in recwarn if "never awaited" in str(w.message)]
    assert capsys.readouterr().err.strip().splitlines() == [
        "vocalis serve: error: VOCALIS_LOOP must be auto, uvloop or asyncio, got 'bogus'"
    ]


def test_bad_wav_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "not.wav"
    bad.write_text("hello")
    result = run_cli("run", "examples/minimal_agent.py:agent", "--input", str(bad))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "is not a readable WAV file" in lines[0]


def test_empty_wav_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = wav(tmp_path, np.zeros(0))
    result = run_cli("run", "examples/minimal_agent.py:agent", "--input", str(path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"vocalis run: error: {path} contains no audio"]


def test_unreachable_endpoint_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = wav(tmp_path, np.zeros(1600))
    result = run_cli(
        "run",
        "examples/minimal_agent.py:agent",
        "--input",
        str(path),
        "--realtime-url",
        "ws://127.0.0.1:9/v1/realtime",
        "--quiet",
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0] == (
        "vocalis run: error: cannot reach ws://127.0.0.1:9/v1/realtime: "
        "connection refused (is the server running on that port?)"
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_unreachable_endpoint_on_serve_is_one_line_and_exit_2(workers: str) -> None:
    """`serve` probes the endpoint before listening: the same line, before any port opens;
    a pool says it once too (its first worker fails before the others start)."""
    result = run_cli(
        "serve", "examples/minimal_agent.py:agent", "--port", "0", "--workers", workers,
        "--realtime-url", "ws://no-such-host.invalid:9/v1/realtime",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "vocalis serve: error: cannot reach ws://no-such-host.invalid:9/v1/realtime: unknown host"
    ]
    assert "playground:" not in result.stdout


def ns(**kwargs: object) -> argparse.Namespace:
    base: dict[str, object] = {
        "realtime_url": None,
        "model": None,
        "offline": False,
        "scenario": None,
        "pace": 1.0,
    }
    base.update(kwargs)
    return argparse.Namespace(**base)


def test_endpoint_rule() -> None:
    assert choose_endpoint(ns(), env={}).kind == "embedded"
    openai = choose_endpoint(ns(), env={"OPENAI_API_KEY": "sk-test"})
    assert (openai.kind, openai.url, openai.model) == ("openai", OPENAI_URL, DEFAULT_MODEL)
    assert "sk-test" not in openai.describe()
    url = choose_endpoint(ns(realtime_url="ws://127.0.0.1:9/v1/realtime", model="m"), env={})
    assert (url.kind, url.url, url.model) == ("url", "ws://127.0.0.1:9/v1/realtime", "m")
    local = choose_endpoint(ns(realtime_url="ws://h:1/v1/realtime?model=gpt-realtime-2"), env={})
    assert local.model == "gpt-realtime-2" and local.api_key == "vocalis-no-key"
    keyed = choose_endpoint(ns(realtime_url="wss://h/v1/realtime"), env={"OPENAI_API_KEY": "k"})
    assert keyed.api_key == "k" and keyed.model == DEFAULT_MODEL
    assert choose_endpoint(ns(offline=True), env={"OPENAI_API_KEY": "k"}).kind == "embedded"
    # A scenario scripts the embedded sim-server, so it means offline even with a key.
    scripted = ns(scenario=Path("examples/scenarios/preamble_tool_answer.yaml"))
    assert choose_endpoint(scripted, env={"OPENAI_API_KEY": "k"}).kind == "embedded"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"realtime_url": "http://x/v1/realtime"}, "must be a ws:// or wss:// URL"),
        ({"realtime_url": "ws://x/v1", "offline": True}, "contradict"),
        ({"pace": 0.0}, "--pace must be positive"),
        ({"scenario": Path("/no/such/scenario.yaml")}, "scenario file not found"),
        (
            {
                "realtime_url": "ws://x/v1/realtime",
                "scenario": Path("examples/scenarios/preamble_tool_answer.yaml"),
            },
            "does nothing with --realtime-url",
        ),
    ],
)
def test_endpoint_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        choose_endpoint(ns(**kwargs), env={})


def test_console_without_audio_devices_is_one_line_and_exit_2() -> None:
    """CI machines have no sound card (and usually no PortAudio): say so, do not crash."""
    try:
        import sounddevice

        devices = sounddevice.query_devices()
    except (ImportError, OSError):
        devices = []
    if devices:
        pytest.skip("this machine has audio devices")
    result = run_cli("console", "examples/minimal_agent.py:agent", "--offline")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vocalis console: error: "), lines
