"""`Supervisor`: starts N worker processes on the fleet's sockets, replaces crashed ones, drains.

Each worker is the same `vocalis serve` command line started again with a `WorkerSpec` in its
environment; it inherits the listening sockets the supervisor bound (so the ports are bound
once, port 0 included, and a bind error is reported once at start) and accepts on them like a
single-process server. The supervisor itself serves nothing: it holds the sockets, the
shared table and the metrics folder, and watches its children.

* Worker 0 starts first, the others once it serves: a usage error (a bad flag, an
  unreachable endpoint) is reported once.
* A worker that exits on its own is logged with its exit code or signal and replaced after a
  back-off (`restart_policy`); its calls are counted as finished in the table. A worker that
  cannot be started at all (fork or exec fails) is retried the same way. A worker that
  fails with a usage error before it was ever ready (a bad flag, an unreachable endpoint)
  stops the fleet with that code: restarting would only repeat it.
* SIGTERM/SIGINT: no more restarts, SIGTERM to every worker (each drains: refuses new calls,
  lets running calls finish up to `--drain-timeout`, exits); the supervisor exits 0 when all
  have exited cleanly. A second signal is passed on (workers then stop at once).
* Workers run in their own process group, so Ctrl-C in a terminal reaches the supervisor
  only (one drain request, not two); if the supervisor dies, each worker sees its channel
  close and drains by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vocalis.providers.reconnect import ReconnectPolicy
from vocalis.worker.fleet import FleetTable
from vocalis.worker.spec import READY, SPEC_ENV, Listener, WorkerSpec

__all__ = ["EXIT_USAGE", "Supervisor", "describe_exit"]

log = logging.getLogger("vocalis.worker.supervisor")

EXIT_USAGE = 2  # `vocalis` exits with this on a usage error (vocalis.app.errors)


def restart_policy() -> ReconnectPolicy:
    """Crashed workers are restarted the way dropped provider sessions are reconnected: the
    first crash after a stable minute at once, then with a doubling, jittered back-off up to
    30 s; after 5 quick crashes in a row the pool stops (a crash loop must reach the service
    manager as a failure, not burn the CPU the other workers' calls need)."""
    return ReconnectPolicy(base_s=0.5, max_s=30.0, max_failures=5, stable_s=60.0)


# Where prometheus-client keeps each process' metric values (its multiprocess mode).
METRICS_ENV = "PROMETHEUS_MULTIPROC_DIR"


def describe_exit(code: int) -> str:
    """`exited with code 3` / `killed by SIGKILL` (asyncio reports a signal as -signum)."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


@dataclass
class _Slot:
    index: int
    policy: ReconnectPolicy
    process: asyncio.subprocess.Process | None = None
    ready: bool = False  # the running process said it serves
    ever_ready: bool = False
    became_ready: asyncio.Event = field(default_factory=asyncio.Event)
    exit_code: int | None = None  # of its last process (None: none has exited)


class Supervisor:
    """Runs `command` as `table.workers` worker processes until stopped (see module doc)."""

    def __init__(
        self,
        command: Sequence[str],
        table: FleetTable,
        metrics_dir: Path,
        listeners: Sequence[tuple[Listener, socket.socket]],
        *,
        secret: str,
        say: Callable[[str], None],
        policy: Callable[[], ReconnectPolicy] = restart_policy,
        kill_after_s: float | None = None,
    ) -> None:
        """`kill_after_s`: a worker still running this long after a stop began is killed
        (SIGKILL): a backstop for a worker whose own drain timeout failed to end it (set it
        above `--drain-timeout` plus the time closing calls takes; None: never)."""
        self.command = list(command)
        self.table = table
        self.metrics_dir = metrics_dir
        self.listeners = list(listeners)
        self.secret = secret
        self.say = say
        self._slots = [_Slot(i, policy()) for i in range(table.workers)]
        self._stopping = asyncio.Event()
        self._failed: int | None = None
        self.kill_after_s = kill_after_s

    async def run(self) -> int:
        """Until every worker has exited after a stop; the exit code for the command."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop, sig.name)
        try:
            # Worker 0 first: a flag or endpoint that cannot work fails once, in one line,
            # before N workers each say so; the others start once it serves.
            first = asyncio.create_task(self._keep(self._slots[0]))
            serving = asyncio.create_task(self._slots[0].became_ready.wait())
            await asyncio.wait({first, serving}, return_when=asyncio.FIRST_COMPLETED)
            serving.cancel()
            others = [] if self._stopping.is_set() else self._slots[1:]
            await asyncio.gather(first, *(self._keep(slot) for slot in others))
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            self._close_listeners()
        if self._failed is not None:
            return self._failed
        clean = all(s.exit_code in (None, 0, -signal.SIGTERM) for s in self._slots)
        return 0 if clean else 1

    def stop(self, why: str) -> None:
        """Drain every worker (first call) or tell them to stop now (later calls)."""
        if self._stopping.is_set():
            self.say(f"{why} again: workers stop now")
        else:
            self._stopping.set()
            self.table.set_draining()
            if live := self._live_workers():
                self.say(f"draining ({why}): {live} worker(s) finish their calls")
            # No replacement will be started: the workers' copies are all that must stay open.
            self._close_listeners()
            if self.kill_after_s is not None:
                asyncio.get_running_loop().call_later(self.kill_after_s, self._kill_stragglers)
        for slot in self._slots:
            if slot.process is not None and slot.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    slot.process.send_signal(signal.SIGTERM)

    def _kill_stragglers(self) -> None:
        for slot in self._slots:
            process = slot.process
            if process is not None and process.returncode is None:
                log.error(
                    "worker %d (pid %d) still running %g s after the stop: killing it",
                    slot.index,
                    process.pid,
                    self.kill_after_s,
                )
                with contextlib.suppress(ProcessLookupError):
                    process.kill()

    def workers_serving(self) -> int:
        """Workers running and ready now (0 while all are starting or being replaced)."""
        return sum(1 for s in self._slots if s.ready)

    def _live_workers(self) -> int:
        return sum(1 for s in self._slots if s.process and s.process.returncode is None)

    def _close_listeners(self) -> None:
        for _listener, sock in self.listeners:
            sock.close()

    async def _keep(self, slot: _Slot) -> None:
        """Run worker `slot.index`, replacing it after a crash, until the fleet stops."""
        announce = slot.index == 0
        loop = asyncio.get_running_loop()
        while not self._stopping.is_set():
            started = loop.time()
            try:
                code, pid = await self._run_once(slot, announce=announce)
            except OSError as exc:
                # Not even started (out of processes or memory, the program being replaced by
                # an upgrade): a failure like a crash, backed off and retried like one.
                if self._stopping.is_set():
                    return
                slot.policy.connect_failed()
                what = f"worker {slot.index} could not be started ({exc})"
            else:
                announce = False
                ended = self._ended(slot, code, pid)
                if ended is None:
                    return
                slot.policy.session_ended(loop.time() - started)
                what = ended
            if slot.policy.exhausted:
                self._fail(1, f"{what}; {slot.policy.failures} failures in a row, giving up")
                return
            delay = slot.policy.delay()
            log.error("%s; restarting in %.2g s", what, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    def _ended(self, slot: _Slot, code: int, pid: int) -> str | None:
        """Worker `slot.index` (`pid`) exited with `code`: count its calls as finished; what
        to log before restarting it, or None when it is not to be restarted."""
        slot.exit_code = code
        lost = self.table.worker_ended(slot.index)
        _forget_metrics(self.metrics_dir, pid)
        if self._stopping.is_set():
            self.say(f"worker {slot.index} (pid {pid}) {describe_exit(code)}")
            return None
        if not slot.ever_ready and code == EXIT_USAGE:
            # The worker said why on stderr; stdout says what the pool does about it.
            self.say(f"worker {slot.index} could not start ({describe_exit(code)}): stopping")
            self._failed = code
            self.stop("a worker could not start")
            return None
        return f"worker {slot.index} (pid {pid}) {describe_exit(code)}; {lost} call(s) lost"

    def _fail(self, code: int, message: str) -> None:
        log.error("%s", message)
        self._failed = code
        self.stop("a worker failed")

    async def _run_once(self, slot: _Slot, *, announce: bool) -> tuple[int, int]:
        """Start worker `slot.index`, wait for it to exit: (exit code, pid)."""
        ours, theirs = socket.socketpair()
        spec = WorkerSpec(
            index=slot.index,
            workers=self.table.workers,
            table=self.table.path,
            metrics_dir=self.metrics_dir,
            channel_fd=theirs.fileno(),
            listeners=tuple(listener for listener, _sock in self.listeners),
            announce=announce,
            secret=self.secret,
        )
        env = {**os.environ, SPEC_ENV: spec.to_env(), METRICS_ENV: str(self.metrics_dir)}
        try:
            process = await asyncio.create_subprocess_exec(
                *self.command,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                pass_fds=(theirs.fileno(), *(listener.fd for listener, _sock in self.listeners)),
                process_group=0,
            )
        except BaseException:
            ours.close()  # no worker to talk to
            raise
        finally:
            theirs.close()
        slot.process = process
        self.table.worker_started(slot.index, process.pid)
        if self._stopping.is_set():  # stopped while it was starting
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        watcher = asyncio.create_task(self._watch_ready(slot, process.pid, ours))
        try:
            code = await process.wait()
        finally:
            slot.ready = False
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            ours.close()
        return code, process.pid

    async def _watch_ready(self, slot: _Slot, pid: int, channel: socket.socket) -> None:
        """Wait for the worker's "ready" line (nothing if it exits first)."""
        channel.setblocking(False)
        loop = asyncio.get_running_loop()
        received = b""
        while len(received) < len(READY):
            chunk = await loop.sock_recv(channel, len(READY) - len(received))
            if not chunk:
                return
            received += chunk
        if received != READY:
            return
        first = not slot.ever_ready
        slot.ready = slot.ever_ready = True
        slot.became_ready.set()
        self.say(f"worker {slot.index} (pid {pid}) ready")
        # Once: when the last slot serves for the first time (a replacement says only its line).
        if first and all(s.ever_ready for s in self._slots):
            self.say(f"{len(self._slots)} workers ready")


def _forget_metrics(metrics_dir: Path, pid: int) -> None:
    """A dead worker's live gauges leave the sum (its counters stay: totals never go back)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, str(metrics_dir))  # type: ignore[no-untyped-call]
