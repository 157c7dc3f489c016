"""Running `vocalis serve` as a real process, shared by the CLI and the fleet-worker tests.

Both suites start the server the way an operator does and read its console to learn the
URLs it bound (port 0). Starting it, reading its output and cleaning it up were copies in
each file; they live here once.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import threading
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


class ServeOutput:
    """All of a server's output lines, read by a thread, waited on by pattern.

    For servers that print from several processes (`--workers N`): lines of different
    workers interleave, so a test finds a line by pattern from a position instead of reading
    strictly in order (`read_until` would consume a line it is not waiting for yet).
    """

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._ended = False
        self._reader = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def expect(
        self, pattern: str, start: int = 0, timeout: float = 60
    ) -> tuple[re.Match[str], int]:
        """The first line at or after `start` matching `pattern`, and the index after it."""
        with self._changed:
            for index in itertools.count(start):
                while index >= len(self.lines):
                    if self._ended or not self._changed.wait(timeout):
                        text = "".join(self.lines)
                        raise AssertionError(f"{pattern!r} not printed; got:\n{text}")
                found = re.search(pattern, self.lines[index])
                if found:
                    return found, index + 1
        raise AssertionError("unreachable")

    def text(self) -> str:
        with self._changed:
            return "".join(self.lines)

    def all_text(self, timeout: float = 10) -> str:
        """Everything printed, once the server closed its output (e.g. after a kill)."""
        with self._changed:
            self._changed.wait_for(lambda: self._ended, timeout)
            return "".join(self.lines)
