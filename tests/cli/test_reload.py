"""`vocalis serve --reload`: an edit to the agent file restarts the server with the new code."""

from __future__ import annotations

import sys
from pathlib import Path

from serve_support import interrupt, read_until, start_serve
from vocalis.app.reload import child_command

AGENT = 'from vocalis import Agent\n\nagent = Agent("Version {n}.", name="v{n}")\n'


def test_the_child_is_this_command_without_the_flag() -> None:
    argv = ["python", "-m", "vocalis.cli", "serve", "a.py", "--reload", "--port", "0"]
    assert child_command(argv) == [
        sys.executable,
        "-m",
        "vocalis.cli",
        "serve",
        "a.py",
        "--port",
        "0",
    ]


def test_an_edit_restarts_the_server(tmp_path: Path) -> None:
    agent = tmp_path / "my_agent.py"
    agent.write_text(AGENT.format(n=1))
    proc = start_serve(str(agent), "--playground", "--port", "0", "--reload")
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        read_until(proc.stdout, r"reload: watching .*" + tmp_path.name, lines)
        read_until(proc.stdout, r"Ctrl-C to stop", lines)
        agent.write_text(AGENT.format(n=2))
        read_until(proc.stdout, r"reload: \['my_agent.py'\] changed, restarting", lines)
        read_until(proc.stdout, r"Ctrl-C to stop", lines)  # the new server is up
    finally:
        interrupt(proc)
    assert "Traceback" not in "".join(lines)
