"""The `vocalis` command line: parsers and lazy dispatch.

Each subcommand lives in its own module of this package exposing ``configure(parser)`` and
``run(args) -> int``, imported only when its command is used, so that ``vocalis --help`` stays
fast and one broken command cannot break others. What a command *does* lives beside this
package (`vocalis.app.*_run`); options several commands share are in `options`.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Protocol

from vocalis.app.errors import EXIT_USAGE, UsageError
from vocalis.app.logs import add_logging_arguments, cli_logging
from vocalis.utils.event_loop import LoopChoiceError


class _Command(Protocol):
    def configure(self, parser: argparse.ArgumentParser) -> None: ...
    def run(self, args: argparse.Namespace) -> int: ...


# name -> (module, one-line help). Modules are imported only when their command is used.
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "vocalis.app.cli.demo",
        "offline spoken demo: tool call, barge-in, proof in out/demo/",
    ),
    "run": ("vocalis.app.cli.run", "run an agent on a caller WAV and write what was heard"),
    "serve": ("vocalis.app.cli.serve", "serve an agent: browser playground and/or Twilio"),
    "console": ("vocalis.app.cli.console", "talk to an agent with the local microphone/speaker"),
    "chat": ("vocalis.app.cli.chat", "chat with an agent in text (no audio device needed)"),
    "sim-server": ("vocalis.sim.command", "run the local OpenAI-Realtime-compatible server"),
}


def _load(name: str) -> _Command:
    module_name, _ = COMMANDS[name]
    module: _Command = importlib.import_module(module_name)
    return module


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vocalis", description="Realtime voice agents whose memory matches what was heard."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == selected:
            _load(name).configure(command_parser)
            add_logging_arguments(command_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    selected = next((a for a in args_list if a in COMMANDS), None)
    parser = build_parser(selected)
    args = parser.parse_args(args_list)
    args.command_line = list(args_list)  # as given: `serve --workers N` starts it again
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    with cli_logging(args):
        try:
            _configure_telemetry()
            return _load(args.command).run(args)
        except (UsageError, LoopChoiceError) as exc:
            # One clear line, no traceback: a wrong path, endpoint or file is not a crash.
            print(f"vocalis {args.command}: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt:
            return 130


def _configure_telemetry() -> None:
    """Install the exporters `OTEL_*` names before anything connects (docs/observability.md):
    a typo such as `OTEL_TRACES_EXPORTER=jaeger` stops the command in one line."""
    from vocalis import telemetry

    try:
        telemetry.configure()
    except telemetry.TelemetryConfigError as exc:
        raise UsageError(str(exc)) from exc
