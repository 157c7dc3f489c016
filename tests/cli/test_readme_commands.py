"""Every `uv run` command in README.md works as written (offline, on the embedded server), and
its Python examples define agents: the README is checked, not trusted.

Commands are read from the README's shell blocks (backslash continuations joined, `<<<` input
honoured); `out/` goes to a temporary folder and servers get `--port 0` (tests run side by
side), are stopped once they are ready and must exit cleanly.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import REPO

from serve_support import interrupt, read_until

README = REPO / "README.md"
ENV = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"} | {"PYTHONUNBUFFERED": "1"}


def blocks(text: str, language: str) -> list[str]:
    """The fenced blocks of `language` ("" for plain shell blocks), in order."""
    found: list[str] = []
    fence: str | None = None  # the language of the block being read, None outside blocks
    lines: list[str] = []
    for line in text.splitlines():
        if not line.startswith("```"):
            lines.append(line)
        elif fence is None:
            fence, lines = line[3:].strip(), []
        else:
            if fence == language:
                found.append("\n".join(lines))
            fence = None
    return found


def shell_commands() -> list[str]:
    commands = []
    for block in blocks(README.read_text(encoding="utf-8"), ""):
        for line in block.replace("\\\n", " ").splitlines():
            if line.startswith("uv run "):
                commands.append(" ".join(line.split("#", 1)[0].split()))
    return commands


def argv_of(command: str, out: Path) -> tuple[list[str], str | None]:
    """The command as a subprocess argv on this interpreter, and its stdin (`<<<`)."""
    command, _, here = command.partition(" <<< ")
    words = [w.replace("out/", f"{out}/") for w in shlex.split(command)[2:]]  # drop `uv run`
    stdin = shlex.split(here)[0] + "\n" if here else None
    if words[0] == "python":
        return [sys.executable, *words[1:]], stdin
    assert words[0] == "vocalis", command
    return [sys.executable, "-m", "vocalis.cli", *words[1:]], stdin


COMMANDS = shell_commands()


def test_the_readme_has_commands() -> None:
    assert any(" chat " in c for c in COMMANDS) and any(" serve " in c for c in COMMANDS)


def test_one_shot_commands_succeed(tmp_path: Path) -> None:
    for command in [c for c in COMMANDS if " serve " not in c]:
        argv, stdin = argv_of(command, tmp_path)
        result = subprocess.run(
            argv, input=stdin, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    assert (tmp_path / "history.json").is_file() and (tmp_path / "timeline.html").is_file()


@pytest.mark.parametrize("command", [c for c in COMMANDS if " serve " in c])
def test_servers_start_and_stop(command: str, tmp_path: Path) -> None:
    argv, _ = argv_of(command, tmp_path)
    proc = subprocess.Popen(
        [*argv, "--port", "0"],
        cwd=REPO,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        read_until(proc.stdout, r"Ctrl-C to stop", lines)
    finally:
        code = interrupt(proc)
    assert code == 0, "".join(lines)


def test_python_blocks_define_agents() -> None:
    from vocalis import Agent

    text = README.read_text(encoding="utf-8")
    quickstart = text.split("## Quickstart", 1)[1].split("## Test your agent", 1)[0]
    codes = blocks(quickstart, "python")
    assert len(codes) == 2
    for code in codes:
        namespace: dict[str, object] = {"__name__": "readme"}
        exec(compile(code, str(README), "exec"), namespace)
        assert isinstance(namespace["agent"], Agent)
