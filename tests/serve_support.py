"""Running `vocalis serve` as a real process, shared by the CLI and the fleet-worker tests.

Both suites start the server the way an operator does and read its console to learn the
URLs it bound (port 0). Starting it, reading its output and cleaning it up were copies in
each file; they live here once.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parents[1]


def start_serve(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`vocalis serve ARGS` from the repo root: unbuffered text output, stderr folded in.

    `OPENAI_API_KEY` is always removed so a developer's real key never reaches a test server
    (the examples then run on the embedded simulator).
    """
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env.pop("OPENAI_API_KEY", None)
    return subprocess.Popen(
        [sys.executable, "-m", "vocalis.cli", "serve", *args],
        cwd=REPO,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def read_until(stream: IO[str], pattern: str, lines: list[str], limit: int = 300) -> re.Match[str]:
    """Read lines (kept in `lines` for failure messages) until one matches `pattern`."""
    for _ in range(limit):
        line = stream.readline()
        if not line:
            break
        lines.append(line)
        found = re.search(pattern, line)
        if found:
            return found
    raise AssertionError(f"{pattern!r} not printed; got:\n{''.join(lines)}")


def interrupt(proc: subprocess.Popen[str], timeout: float = 20) -> int:
    """Ctrl-C a server the way a user does and return its exit code (killed if it hangs)."""
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=timeout)
    finally:
        kill_if_running(proc)


def kill_if_running(proc: subprocess.Popen[str]) -> None:
    """Cleanup for a test's `finally`: a server the test did not stop is killed and reaped."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
