"""Options several commands share, defined once (same names, same help, same types).

The endpoint flags live with the endpoint rule (`vocalis.app.endpoint`), the logging flags
with the logging setup (`vocalis.app.logs`); the output files and `--quiet` are here.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_output_arguments(parser: argparse.ArgumentParser, *, record: bool, timeline: bool) -> None:
    """`--history`, `--events` and optionally `--record` / `--timeline` in an "outputs" group."""
    out = parser.add_argument_group("outputs")
    if record:
        out.add_argument(
            "--record",
            type=Path,
            metavar="WAV",
            help="write a stereo WAV: caller left, agent as actually played right",
        )
    out.add_argument("--history", type=Path, metavar="JSON", help="write the heard history")
    out.add_argument("--events", type=Path, metavar="JSONL", help="write every session event")
    if timeline:
        out.add_argument(
            "--timeline",
            type=Path,
            metavar="HTML",
            help="write the self-contained timeline page (generated vs heard per message)",
        )


def add_quiet_argument(parser: argparse.ArgumentParser, what_remains: str) -> None:
    parser.add_argument(
        "--quiet", "-q", action="store_true", help=f"no live transcript, only {what_remains}"
    )
