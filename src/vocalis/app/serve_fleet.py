"""`vocalis serve --workers N`: the supervisor's side (bind, start the pool) and a worker's.

Why inherited pre-bound sockets rather than SO_REUSEPORT: the supervisor binds each port
once, so `--port 0` means one port for the whole fleet, a port in use is reported once at
start, and no other process of the same user can join the port. All workers accept on the
same queue: a connection waits in it until *some* worker accepts, and a worker whose loop is
busy simply accepts less (with SO_REUSEPORT the kernel hashes each connection to one
worker's queue, busy or not, and a dying worker's queued connections are reset).

A worker runs today's single-process serve code unchanged (`serve_run`); `FleetMember` is
what it needs to know about the fleet: its index, the shared table (fleet-wide admission,
call numbers), which lines to print, and the channel to tell the supervisor it is ready.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from vocalis.app.agent_ref import is_registered
from vocalis.app.errors import UsageError
from vocalis.app.terminal import make_console
from vocalis.transports._web import new_token
from vocalis.transports.web import WebServer
from vocalis.transports.web.listeners import adopt, bind_listener
from vocalis.worker.fleet import FleetPlace, FleetTable
from vocalis.worker.pool_admin import PoolAdmin
from vocalis.worker.spec import READY, SPEC_ENV, Listener, ListenerRole, WorkerSpec
from vocalis.worker.supervisor import Supervisor

__all__ = [
    "FleetMember",
    "default_workers",
    "join_fleet",
    "serve_fleet",
    "serves_page",
    "twilio_port",
]

TOKEN_ENV = "VOCALIS_TOKEN"
# After --drain-timeout a worker closes its remaining calls (up to 10 s) and its servers (5 s):
# one still running this much later is stuck and is killed by the supervisor.
STRAGGLER_GRACE_S = 30.0


def default_workers() -> int:
    """One worker per core this process may run on (a call is pinned to one core's loop)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def serves_page(args: argparse.Namespace) -> bool:
    """Does `vocalis serve` open the playground (or WebRTC) page on `--port`?"""
    return bool(args.webrtc or args.playground or not args.twilio)


def twilio_port(args: argparse.Namespace) -> int:
    """The Twilio port: `--twilio-port`, else the one after a page's `--port` (0 stays 0:
    any free port), else `--port` itself."""
    if args.twilio_port is not None:
        return int(args.twilio_port)
    return int(args.port + 1 if serves_page(args) and args.port else args.port)


def _wanted_ports(args: argparse.Namespace) -> list[tuple[ListenerRole, int]]:
    """The ports `vocalis serve` listens on for these flags (the same rules as one process)."""
    wanted: list[tuple[ListenerRole, int]] = []
    if serves_page(args):
        wanted.append(("call", args.port))
    if args.twilio:
        wanted.append(("twilio", twilio_port(args)))
    if args.admin_port is not None:
        wanted.append(("admin", args.admin_port))
    return wanted


def _bind_all(args: argparse.Namespace) -> list[tuple[Listener, socket.socket]]:
    bound: list[tuple[Listener, socket.socket]] = []
    try:
        for role, port in _wanted_ports(args):
            sock = bind_listener(args.host, port)
            actual = int(sock.getsockname()[1])
            bound.append((Listener(role, args.host, actual, sock.fileno()), sock))
    except OSError as exc:
        for _listener, sock in bound:
            sock.close()
        raise UsageError(f"cannot listen on {args.host}: {exc.strerror or exc}") from exc
    return bound


@contextlib.contextmanager
def _runtime_dir() -> Iterator[Path]:
    """The fleet's private folder (mode 0700): the shared table and the metrics files."""
    folder = Path(tempfile.mkdtemp(prefix="vocalis-fleet-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def worker_command(args: argparse.Namespace) -> list[str]:
    """The command line each worker runs: this command again (it learns from its
    `WorkerSpec` that it is a worker). A `run_app` script is run again as it was started,
    since only the script can register its agent; anything else is `python -m vocalis.cli`
    with the arguments this process parsed."""
    if is_registered(args.agent_ref):
        return [sys.executable, *sys.orig_argv[1:]]
    command_line: list[str] | None = getattr(args, "command_line", None)
    if command_line is None:  # flags not parsed by the CLI: nothing to start again
        raise UsageError("--workers N needs the `vocalis serve` command line; use --workers 1")
    return [sys.executable, "-m", "vocalis.cli", *command_line]


def serve_fleet(args: argparse.Namespace) -> int:
    """Bind the ports, run `args.workers` workers until SIGTERM/Ctrl-C drained them."""
    console = make_console()
    command = worker_command(args)
    bound = _bind_all(args)
    calls = [(listener, sock) for listener, sock in bound if listener.role != "admin"]
    admin = next(((lst, sock) for lst, sock in bound if lst.role == "admin"), None)
    # One playground secret for the whole fleet (a page opened on one worker calls another).
    secret = "" if os.environ.get(TOKEN_ENV) else new_token()
    with _runtime_dir() as folder:
        table = FleetTable.create(folder / "admission", args.workers)
        metrics = folder / "metrics"
        metrics.mkdir()
        supervisor = Supervisor(
            command,
            table,
            metrics,
            calls,
            secret=secret,
            say=lambda line: console.print(line, highlight=False),
            kill_after_s=args.drain_timeout + STRAGGLER_GRACE_S,
        )
        console.print(
            f"supervisor (pid {os.getpid()}): starting {args.workers} workers", highlight=False
        )
        pool_admin = PoolAdmin(table, args.max_sessions, str(metrics), supervisor.workers_serving)
        try:
            code = asyncio.run(_supervise(supervisor, pool_admin, admin, console))
        finally:
            table.close()
    console.print("stopped")
    return code


async def _supervise(
    supervisor: Supervisor,
    pool_admin: PoolAdmin,
    admin: tuple[Listener, socket.socket] | None,
    console: Console,
) -> int:
    """Run the pool; the supervisor answers `--admin-port` itself until the pool stopped."""
    server: WebServer | None = None
    if admin is not None:
        listener, sock = admin
        adopt(listener.host, listener.port, sock)
        server = await WebServer.start(pool_admin.routes(), listener.host, listener.port)
        console.print(f"admin: http://{server.authority}/metrics", highlight=False)
    try:
        return await supervisor.run()
    finally:
        if server is not None:
            await server.aclose()


@dataclass
class FleetMember:
    """A worker process' place in the fleet (from its `WorkerSpec`)."""

    spec: WorkerSpec
    table: FleetTable
    channel: socket.socket

    @property
    def index(self) -> int:
        return self.spec.index

    @property
    def place(self) -> FleetPlace:
        return FleetPlace(self.table, self.spec.index, self.spec.metrics_dir)

    @property
    def label(self) -> str:
        return f"worker {self.spec.index}, pid {os.getpid()}"

    def ready(self) -> None:
        """Tell the supervisor this worker serves (it prints so, and stops treating an exit
        as a start-up failure)."""
        self.channel.sendall(READY)

    def on_supervisor_gone(self, callback: Callable[[], None]) -> None:
        """`callback` once the supervisor's end of the channel closes (it died or exited)."""
        loop = asyncio.get_running_loop()
        self.channel.setblocking(False)

        def readable() -> None:
            try:
                data = self.channel.recv(64)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(self.channel.fileno())
                callback()

        loop.add_reader(self.channel.fileno(), readable)


def join_fleet(args: argparse.Namespace) -> FleetMember | None:
    """In a worker started by `serve_fleet`: adopt the inherited sockets (and point the flags
    at their ports), open the shared table. None when this process serves alone."""
    spec = WorkerSpec.from_env()
    if spec is None:
        return None
    # Read once, then gone: a process this worker starts (a tool's subprocess) must not
    # inherit the fleet's playground secret, nor take itself for a member of the pool.
    del os.environ[SPEC_ENV]
    args.admin_port = None  # the supervisor serves it (`PoolAdmin`) and keeps its socket
    for listener in spec.listeners:
        adopt(listener.host, listener.port, socket.socket(fileno=listener.fd))
        if listener.role == "call":
            args.port = listener.port
        elif listener.role == "twilio":
            args.twilio_port = listener.port
    channel = socket.socket(fileno=spec.channel_fd)
    return FleetMember(spec, FleetTable.open(spec.table), channel)
