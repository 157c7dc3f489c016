"""`run_app(agent)`: an agent file is its own CLI (`python my_agent.py [COMMAND] ...`), and
`dir(vocalis)` shows the public names."""

from __future__ import annotations

from cli_support import run_python

import vocalis
from vocalis.app.run_app import app_argv


def test_the_command_defaults_to_chat_and_the_agent_is_inserted() -> None:
    assert app_argv("a.py", []) == ["chat", "a.py"]
    assert app_argv("a.py", ["--offline"]) == ["chat", "a.py", "--offline"]
    assert app_argv("a.py", ["serve", "--playground"]) == ["serve", "a.py", "--playground"]
    assert app_argv("a.py", ["run", "-i", "q.wav"]) == ["run", "a.py", "-i", "q.wav"]


def test_python_agent_py_chats() -> None:
    result = run_python("examples/assistant_with_tools.py", "--offline", stdin="Hello\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["you › Hello", "agent › You said: Hello"]
    assert "vocalis chat assistant_with_tools.py" in result.stderr


def test_dir_lists_the_public_api() -> None:
    names = dir(vocalis)
    for name in ("Agent", "AgentSession", "function_tool", "ToolContext", "run_app", "EspeakTTS"):
        assert name in names
    assert vocalis.run_app.__module__ == "vocalis.app.run_app"
