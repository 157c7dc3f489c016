"""`vocalis serve --reload`: restart the server whenever a Python file of the agent changes.

Why: editing instructions or a tool and re-running the command by hand is the slowest part of
developing an agent in the browser. `--reload` runs the same command line (without the flag)
as a child process under `watchfiles` and restarts it when a `.py`, `.yaml` or `.json` file
in the agent's folder changes. Development only: calls in progress are cut on restart.
Needs the `reload` extra (`uv add 'vocalis[reload]'`, `pip install 'vocalis[reload]'`).
"""

from __future__ import annotations

import contextlib
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from vocalis.app.agent_ref import split_ref

if TYPE_CHECKING:
    from watchfiles import Change
from vocalis.app.errors import UsageError

WATCHED_SUFFIXES = (".py", ".yaml", ".yml", ".json")
RELOAD_FLAG = "--reload"


def watched_folder(agent_ref: str) -> Path:
    """The agent file's folder (a `file.py:name` ref or a `run_app` script), else the cwd."""
    target, _ = split_ref(agent_ref)
    path = Path(target)
    if path.suffix == ".py" and path.is_file():
        return path.resolve().parent
    script = Path(sys.argv[0])
    if script.suffix == ".py" and script.is_file() and script.name == agent_ref:
        return script.resolve().parent
    return Path.cwd()


def child_command(orig_argv: list[str]) -> list[str]:
    """This process' command line (interpreter options included) without `--reload`."""
    return [sys.executable, *(arg for arg in orig_argv[1:] if arg != RELOAD_FLAG)]


def _restarting(changes: set[tuple[Change, str]]) -> None:
    names = sorted({Path(path).name for _, path in changes})
    print(f"reload: {names} changed, restarting", file=sys.stderr, flush=True)


def serve_with_reload(agent_ref: str) -> int:
    try:
        import watchfiles
    except ImportError:
        raise UsageError(
            "--reload needs the watchfiles package: install the reload extra "
            "(uv add 'vocalis[reload]' or pip install 'vocalis[reload]')"
        ) from None
    folder = watched_folder(agent_ref)
    command = child_command(list(sys.orig_argv))
    print(f"reload: watching {folder}", file=sys.stderr, flush=True)
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: the server stopped, as without
        watchfiles.run_process(
            folder,
            target=shlex.join(command),
            target_type="command",
            # Python files plus scenarios; caches, .git and .venv are ignored.
            watch_filter=watchfiles.PythonFilter(extra_extensions=WATCHED_SUFFIXES[1:]),
            callback=_restarting,
        )
    return 0
