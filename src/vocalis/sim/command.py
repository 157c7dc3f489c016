"""``vocalis sim-server``: run the local realtime server as its own process.

Prints the WebSocket URL on stdout (one line, so scripts can read it) and serves until
Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from pydantic import ValidationError
from yaml import YAMLError

from vocalis.sim.server import SimServer


def _port(text: str) -> int:
    """A TCP port, checked up front so a typo is a usage error, not a traceback."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {port}")
    return port


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: %(default)s)"
    )
    parser.add_argument("--port", type=_port, default=8765, help="port (0 = any free port)")
    parser.add_argument("--scenario", help="scenario file (YAML or JSON); default brain otherwise")
    parser.add_argument(
        "--pace",
        type=float,
        default=1.0,
        help="audio emission speed relative to real time (4 = 4x faster, 0 = unthrottled)",
    )
    parser.add_argument("--log", help="write every event both ways to this JSONL file")
    parser.add_argument(
        "--session-max-seconds",
        type=float,
        default=None,
        help="expire sessions after this many seconds (session_expired, close 1001)",
    )
    parser.add_argument(
        "--no-auth",
        action="store_true",
        help="accept connections without an API key (by default any key is accepted, none is not)",
    )


async def _serve(args: argparse.Namespace) -> None:
    server = SimServer(
        args.host,
        args.port,
        scenario=args.scenario,
        pace=args.pace,
        log_path=args.log,
        session_max_seconds=args.session_max_seconds,
        require_auth=not args.no_auth,
        max_closed_sessions=50,
        # Nobody reads a process's in-memory records (--log has them): a 10-minute call
        # would otherwise keep ~15 MB of event summaries.
        max_recorded_events=0,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with server:
        print(f"{server.url}?model=gpt-realtime", flush=True)
        await stop.wait()


def run(args: argparse.Namespace) -> int:
    # Every problem with what the user asked for (a scenario that is missing or invalid, a
    # port that cannot be bound) is one clear line and exit code 2, like every other command.
    if args.scenario is not None and not Path(args.scenario).is_file():
        print(f"vocalis sim-server: no scenario file at {args.scenario}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(args))
    except (ValidationError, YAMLError, ValueError) as exc:
        print(f"vocalis sim-server: invalid scenario {args.scenario}:\n{exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        reason = exc.strerror or str(exc)
        print(
            f"vocalis sim-server: cannot serve on {args.host}:{args.port}: {reason}",
            file=sys.stderr,
        )
        return 2
    return 0
