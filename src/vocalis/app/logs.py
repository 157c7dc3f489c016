"""`--log-level`, `-v`, `--log-format` for every command, and the logging they configure.

Why: without configuration Python prints warnings bare (no call, no time) and drops
everything below, so a failing tool left no trace and `--quiet` could not silence provider
noise. Every command now logs to stderr — stdout stays the transcript — with the call's
context on each record (`vocalis.utils.logcontext`) as text or one JSON object per line.

Levels: the default shows warnings; `-v` info, `-vv` debug for vocalis (libraries stay at
info: websockets' frame dumps are not what a user debugging an agent wants), `-vvv` debug for
everything; `--log-level` sets it by name and wins over `-v`; a command's `--quiet` means
errors only unless a level is given. `VOCALIS_LOG_LEVEL` is the default for `--log-level`.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import Literal

from vocalis.utils.logcontext import CallContextFilter, JsonFormatter, TextFormatter
from vocalis.utils.logsafe import HeaderRedactor, TerminalSafe

LEVELS = ("debug", "info", "warning", "error")
LEVEL_ENV = "VOCALIS_LOG_LEVEL"
LogFormat = Literal["text", "json"]


def add_logging_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("logging (on stderr)")
    group.add_argument(
        "--log-level",
        type=str.lower,
        choices=LEVELS,
        default=os.environ.get(LEVEL_ENV, "").lower() or None,
        help=f"debug, info, warning (default) or error; default from ${LEVEL_ENV}",
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="more log detail: -v info, -vv debug, -vvv debug for libraries too",
    )
    group.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="text lines (default) or one JSON object per record, for log pipelines",
    )


def chosen_level(args: argparse.Namespace) -> int:
    name: str | None = getattr(args, "log_level", None)
    if name in LEVELS:
        return int(getattr(logging, name.upper()))
    verbose = int(getattr(args, "verbose", 0) or 0)
    if verbose >= 2:
        return logging.DEBUG
    if verbose == 1:
        return logging.INFO
    return logging.ERROR if getattr(args, "quiet", False) else logging.WARNING


@contextlib.contextmanager
def cli_logging(args: argparse.Namespace) -> Iterator[logging.Handler]:
    """`configure_logging` for one command; afterwards the handler and levels are as before
    (`main()` also runs in-process: tests, an app embedding the CLI)."""
    root, ours = logging.getLogger(), logging.getLogger("vocalis")
    levels = root.level, ours.level
    handler = configure_logging(args)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        ours.setLevel(levels[1])


def configure_logging(args: argparse.Namespace) -> logging.Handler:
    """Install one stderr handler on the root logger (replacing one installed before)."""
    level = chosen_level(args)
    fmt: LogFormat = "json" if getattr(args, "log_format", "text") == "json" else "text"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(CallContextFilter())
    handler.addFilter(HeaderRedactor())  # a secret in any library's debug line stays hidden
    handler.addFilter(TerminalSafe())  # peer-written text cannot drive the terminal
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_vocalis_cli", False)]:
        root.removeHandler(old)
    handler._vocalis_cli = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    everything_debug = int(getattr(args, "verbose", 0) or 0) >= 3
    root.setLevel(level if everything_debug or level > logging.DEBUG else logging.INFO)
    logging.getLogger("vocalis").setLevel(level)
    return handler
