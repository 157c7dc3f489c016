"""``vocalis sim-server``: run the local realtime server as its own process.

Prints the endpoint URL as the first stdout line (so scripts can read it), then, with
``--tls``, where the certificate is and how to trust it; serves until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import signal
import sys
from pathlib import Path

from pydantic import ValidationError
from yaml import YAMLError

from vocalis.sim.dialect import Dialect
from vocalis.sim.server import SimServer
from vocalis.sim.tls import (
    CertificateError,
    LocalCertificate,
    ensure_local_certificate,
    load_certificate,
    trust_instructions,
)
from vocalis.utils.event_loop import loop_kind
from vocalis.utils.event_loop import run as run_loop

PROTOCOLS = ("openai", "gemini")


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
        "--protocol",
        choices=PROTOCOLS,
        default="openai",
        help="wire protocol: OpenAI Realtime (default) or Gemini Live (also serves OpenAI)",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="serve https:// and wss:// with a self-signed certificate for 127.0.0.1, ::1 and "
        "localhost (made on first use in the user cache; printed with how to trust it)",
    )
    parser.add_argument("--cert", help="with --tls: your own PEM certificate (needs --key)")
    parser.add_argument("--key", help="with --tls: the PEM private key of --cert")
    parser.add_argument(
        "--no-auth",
        action="store_true",
        help="accept connections without an API key (by default any key is accepted, none is not)",
    )


def _certificate(args: argparse.Namespace) -> LocalCertificate | None:
    if not args.tls:
        if args.cert or args.key:
            raise _UsageError("--cert and --key need --tls")
        return None
    if bool(args.cert) != bool(args.key):
        raise _UsageError("--cert and --key go together")
    if args.cert:
        return load_certificate(args.cert, args.key)
    return ensure_local_certificate()


def _dialects(protocol: str) -> list[Dialect]:
    if protocol == "openai":
        return []
    try:
        module = importlib.import_module(f"vocalis.sim.{protocol}")
    except ImportError:
        raise _UsageError(f"--protocol {protocol} is not available in this version") from None
    dialect: Dialect = module.DIALECT
    return [dialect]


class _UsageError(Exception):
    """A problem with the command line, reported as one line and exit code 2."""


def _banner(server: SimServer, dialects: list[Dialect]) -> list[str]:
    lines: list[str] = []
    for dialect in dialects:
        lines += dialect.banner(server.base_url)
    if not dialects:
        lines.append(f"{server.url}?model=gpt-realtime")
    if server.tls is not None:
        lines += trust_instructions(server.tls, server.base_url)
    return lines


async def _serve(args: argparse.Namespace) -> None:
    dialects = _dialects(args.protocol)
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
        tls=_certificate(args),
        dialects=dialects,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with server:
        print("\n".join(_banner(server, dialects)), flush=True)
        await stop.wait()


def run(args: argparse.Namespace) -> int:
    # Every problem with what the user asked for (a scenario that is missing or invalid, a
    # port that cannot be bound) is one clear line and exit code 2, like every other command.
    if args.scenario is not None and not Path(args.scenario).is_file():
        print(f"vocalis sim-server: no scenario file at {args.scenario}", file=sys.stderr)
        return 2
    # asyncio's loop unless VOCALIS_LOOP=uvloop (vocalis.utils.event_loop): uvloop is not
    # measured to help the sim yet, and new sessions' handshakes lagged more on it when the
    # machine was starved (docs/sim-server.md, "Capacity").
    try:
        loop = loop_kind(auto="asyncio")
    except ValueError as exc:
        print(f"vocalis sim-server: {exc}", file=sys.stderr)
        return 2
    try:
        run_loop(_serve(args), auto=loop)
    except (_UsageError, CertificateError) as exc:
        print(f"vocalis sim-server: {exc}", file=sys.stderr)
        return 2
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
