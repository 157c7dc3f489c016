"""`vocalis` / `python -m vocalis.cli`: the console script's entry point.

The command line itself lives in `vocalis.app.cli`; this module only keeps the entry point
stable for installers and `python -m`.
"""

from __future__ import annotations

from vocalis.app.cli import COMMANDS, build_parser, main

__all__ = ["COMMANDS", "build_parser", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
