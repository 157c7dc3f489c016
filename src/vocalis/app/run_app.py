"""`vocalis.run_app(agent)`: make an agent file runnable on its own (`python my_agent.py`).

Why: a user's first agent is one file; `python my_agent.py` doing nothing was a dead end.
With `if __name__ == "__main__": run_app(agent)` at the bottom, the file is its own CLI:

    python my_agent.py                      # chat in the terminal (text, no audio device)
    python my_agent.py console              # talk with the microphone
    python my_agent.py serve --playground   # the browser playground (--twilio for phones)
    python my_agent.py run --input q.wav    # one recorded question

Every option of the matching `vocalis` command works (`python my_agent.py serve --help`); the
agent (or a per-call factory) is the object given here instead of an AGENT_REF.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

COMMANDS = ("chat", "console", "serve", "run")
DEFAULT_COMMAND = "chat"


def app_argv(agent_ref: str, argv: list[str]) -> list[str]:
    """`[COMMAND] OPTIONS...` of the script → the `vocalis` command line with the agent."""
    if argv and argv[0] in COMMANDS:
        return [argv[0], agent_ref, *argv[1:]]
    return [DEFAULT_COMMAND, agent_ref, *argv]


def run_app(agent: Any, argv: list[str] | None = None) -> NoReturn:
    """Run the `vocalis` CLI on `agent` (an `Agent` or a factory); exits with its code."""
    from vocalis.app.agent_ref import register_agent
    from vocalis.cli import main

    script = Path(sys.argv[0]).name or "agent"
    ref = register_agent(script, agent)
    raise SystemExit(main(app_argv(ref, sys.argv[1:] if argv is None else argv)))
