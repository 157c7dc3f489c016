"""The pool supervisor with small real worker programs (no server): restarts, give-up, drain.

The workers here are tiny Python programs speaking the supervisor's protocol (read the
`WorkerSpec`, say "ready" on the channel, drain on SIGTERM), so the supervisor's decisions are
checked on real processes and signals in a second or two; the full `vocalis serve --workers`
is tested in test_serve_pool.py.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import sys
from pathlib import Path

import pytest

from vocalis.app.agent_ref import register_agent
from vocalis.app.serve_fleet import FleetMember, worker_command
from vocalis.providers.reconnect import ReconnectPolicy
from vocalis.worker.fleet import FleetTable
from vocalis.worker.spec import WorkerSpec
from vocalis.worker.supervisor import Supervisor

pytestmark = pytest.mark.timeout(60)

# A worker that says it is ready, then waits for SIGTERM and exits 0.
STEADY = """
import os, signal, socket
from vocalis.worker.spec import WorkerSpec
spec = WorkerSpec.from_env()
channel = socket.socket(fileno=spec.channel_fd)
signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
channel.sendall(b"ready\\n")
while True:
    signal.pause()
"""


# A worker that says it is ready and then ignores SIGTERM (a drain that never ends).
STUCK = STEADY.replace("lambda *_: os._exit(0)", "signal.SIG_IGN")


def fast_restarts() -> ReconnectPolicy:
    return ReconnectPolicy(base_s=0.01, max_s=0.02, max_failures=2, stable_s=60.0)


def supervisor(
    tmp_path: Path,
    code: str,
    workers: int,
    lines: list[str],
    ready: asyncio.Event | None = None,
    kill_after_s: float | None = None,
    command: list[str] | None = None,
) -> Supervisor:
    """A pool of `workers` running `code`; what it says goes to `lines` (and sets `ready` once
    every worker was ready)."""

    def say(line: str) -> None:
        lines.append(line)
        if ready is not None and line.endswith("workers ready"):
            ready.set()

    table = FleetTable.create(tmp_path / "admission", workers)
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    return Supervisor(
        command or [sys.executable, "-c", code],
        table,
        metrics,
        [],
        secret="",
        say=say,
        policy=fast_restarts,
        kill_after_s=kill_after_s,
    )


async def test_a_crash_loop_stops_the_pool_with_exit_1(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines: list[str] = []
    pool = supervisor(tmp_path, "raise SystemExit(3)", 1, lines)
    assert await pool.run() == 1
    crashes = [r.getMessage() for r in caplog.records if "exited with code 3" in r.getMessage()]
    assert len(crashes) == 3  # two restarts, then the third crash in a row gives up
    assert "restarting" in crashes[0] and "giving up" in crashes[-1]
    assert pool.table.totals().starts_by_worker == (3,)


# Runs as an executable file: the first start crashes after moving its own file away (its
# replacement then cannot be started); once the file is back, a STEADY worker.
COMES_BACK = (
    """
import os, sys
if not os.path.exists(sys.argv[0] + ".crashed"):
    open(sys.argv[0] + ".crashed", "w").close()
    os.rename(sys.argv[0], sys.argv[0] + ".away")
    raise SystemExit(3)
"""
    + STEADY
)


class _PutBack(logging.Handler):
    """Moves the worker program back once the supervisor logs that it could not start it."""

    def __init__(self, program: Path) -> None:
        super().__init__()
        self.program = program

    def emit(self, record: logging.LogRecord) -> None:
        if "could not be started" in record.getMessage():
            os.rename(f"{self.program}.away", self.program)


async def test_a_worker_that_cannot_be_started_is_retried_after_a_back_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    program = tmp_path / "worker"
    program.write_text(f"#!{sys.executable}\n{COMES_BACK}")
    program.chmod(0o700)
    lines: list[str] = []
    ready = asyncio.Event()
    pool = supervisor(tmp_path, "", 1, lines, ready, command=[str(program)])
    put_back = _PutBack(program)
    logging.getLogger("vocalis.worker.supervisor").addHandler(put_back)
    try:
        running = asyncio.create_task(pool.run())
        await asyncio.wait(
            {running, asyncio.create_task(ready.wait())}, return_when="FIRST_COMPLETED"
        )
        assert ready.is_set(), lines  # the pool did not end: the third start serves
    finally:
        logging.getLogger("vocalis.worker.supervisor").removeHandler(put_back)
    pool.stop("test")
    assert await running == 0
    failed = [r.getMessage() for r in caplog.records if "could not be started" in r.getMessage()]
    assert len(failed) == 1 and "restarting in" in failed[0]
    assert pool.table.totals().starts_by_worker == (2,)


async def test_a_usage_error_at_start_stops_the_pool_with_its_code(tmp_path: Path) -> None:
    lines: list[str] = []
    pool = supervisor(tmp_path, "raise SystemExit(2)", 2, lines)
    assert await pool.run() == 2
    # Worker 0 failed before it served: not restarted, and worker 1 never started.
    assert pool.table.totals().starts_by_worker == (1, 0)
    assert lines[-1] == "worker 0 could not start (exited with code 2): stopping"


async def test_stop_drains_every_worker_and_exits_0(tmp_path: Path) -> None:
    lines: list[str] = []
    ready = asyncio.Event()
    pool = supervisor(tmp_path, STEADY, 2, lines, ready)
    running = asyncio.create_task(pool.run())
    await ready.wait()
    assert "2 workers ready" in lines
    pool.stop("test")
    assert await running == 0
    assert sum("exited with code 0" in line for line in lines) == 2


async def test_a_worker_stuck_in_its_drain_is_killed_after_the_backstop(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    lines: list[str] = []
    ready = asyncio.Event()
    pool = supervisor(tmp_path, STUCK, 1, lines, ready, kill_after_s=0.5)
    running = asyncio.create_task(pool.run())
    await ready.wait()
    pool.stop("test")
    assert await running == 1  # not a clean drain
    assert any("killed by SIGKILL" in line for line in lines)
    assert any("still running 0.5 s after the stop" in r.getMessage() for r in caplog.records)


def test_workers_run_the_parsed_command_line_again() -> None:
    argv = ["serve", "examples/minimal_agent.py:agent", "--workers", "2"]
    args = argparse.Namespace(agent_ref=argv[1], command_line=argv)
    assert worker_command(args) == [sys.executable, "-m", "vocalis.cli", *argv]


def test_a_run_app_script_is_run_again_as_started() -> None:
    ref = register_agent("pool_test_agent.py", object())
    args = argparse.Namespace(agent_ref=ref, command_line=["serve", ref, "--workers", "2"])
    assert worker_command(args) == [sys.executable, *sys.orig_argv[1:]]


async def test_a_worker_learns_that_its_supervisor_is_gone(tmp_path: Path) -> None:
    """The channel's far end closing (the supervisor exited or was killed) starts the drain."""
    ours, theirs = socket.socketpair()
    spec = WorkerSpec(
        index=0,
        workers=1,
        table=tmp_path / "admission",
        metrics_dir=tmp_path,
        channel_fd=theirs.fileno(),
        listeners=(),
        announce=False,
        secret="",
    )
    member = FleetMember(spec, FleetTable.create(spec.table, 1), theirs)
    gone = asyncio.Event()
    member.on_supervisor_gone(gone.set)
    member.ready()
    assert ours.recv(64) == b"ready\n"
    assert not gone.is_set()
    ours.close()
    await gone.wait()
