"""`vocalis chat`: a text conversation offline on the embedded sim-server, as a user types it
(real subprocesses; piped stdin, so each line is answered before the next is sent)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from cli_support import NO_KEY_ENV, REPO, run_python

AGENT = "examples/assistant_with_tools.py:agent"
SCENARIO = "examples/scenarios/preamble_tool_answer.yaml"


def chat(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return run_python("-m", "vocalis.cli", "chat", *args, stdin=stdin)


def test_chat_answers_each_line_and_shows_tool_calls(tmp_path: Path) -> None:
    history = tmp_path / "chat.json"
    lines = "What is the weather in Paris?\nThanks, bye\n"
    result = chat(AGENT, "--scenario", SCENARIO, "--history", str(history), stdin=lines)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "you › What is the weather in Paris?",
        "agent › Let me check the weather for you.",  # the preamble before the call it announced
        '  tool get_weather({"city": "Paris"})',
        '    → {"city": "Paris", "sky": "sunny", "temperature_c": 22}',
        "agent › It is sunny in Paris right now, at 22 degrees.",
        "you › Thanks, bye",
        "agent › You said: Thanks, bye",  # the script is used up: the default brain answers
    ]
    assert "embedded sim-server (offline" in result.stderr
    items = json.loads(history.read_text())["items"]
    texts = [(i["role"], i.get("text")) for i in items if i["type"] == "message"]
    assert texts[0] == ("user", "What is the weather in Paris?")
    assert texts[-1] == ("assistant", "You said: Thanks, bye")


def test_a_long_line_is_not_wrapped_when_stdout_is_not_a_terminal() -> None:
    long = "word " * 40
    result = chat(AGENT, "--offline", stdin=long + "\n")
    assert result.returncode == 0, result.stderr
    assert f"agent › You said: {long.strip()}" in result.stdout.splitlines()


def test_quit_ends_the_chat_before_the_remaining_lines() -> None:
    result = chat(AGENT, "--offline", stdin="Hello\n/quit\nnever sent\n")
    assert result.returncode == 0
    assert "never sent" not in result.stdout


def test_bad_turn_timeout_is_one_line() -> None:
    result = chat(AGENT, "--turn-timeout", "0", stdin="")
    assert result.returncode == 2
    assert result.stderr.strip() == "vocalis chat: error: --turn-timeout must be positive, got 0"


def test_ctrl_c_still_writes_the_history(tmp_path: Path) -> None:
    history = tmp_path / "cut.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vocalis.cli",
            "chat",
            AGENT,
            "--offline",
            "--history",
            str(history),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO,
        env=NO_KEY_ENV,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("Hello\n")
    proc.stdin.flush()
    for line in iter(proc.stdout.readline, ""):  # "" = the chat ended before answering
        if "agent › You said: Hello" in line:
            break
    else:
        raise AssertionError(f"chat ended before the answer: {proc.communicate()[1]}")
    proc.send_signal(signal.SIGINT)  # stdin stays open: the chat waits for the next line
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    items = json.loads(history.read_text())["items"]
    assert [i["text"] for i in items] == ["Hello", "You said: Hello"]


def test_console_text_is_the_chat_without_an_audio_device() -> None:
    result = run_python(
        "-m", "vocalis.cli", "console", AGENT, "--text", "--offline", stdin="Hello\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["you › Hello", "agent › You said: Hello"]


def test_a_tool_can_end_the_chat() -> None:
    lines = "I was charged twice.\nOrder 42, please.\nThat's all, thanks.\nnever sent\n"
    result = chat(
        "examples/multi_agent/triage.py",
        "--scenario",
        "examples/scenarios/triage_handoff.yaml",
        stdin=lines,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[-5:] == [
        "agent › Goodbye!",
        "  tool end_call({})",
        "    → the call ends after your goodbye",
        "agent › Take care.",
        "(the agent ended the call)",
    ]
    assert "never sent" not in result.stdout
    assert "agent › Billing here. Which order should I refund?" in out
