"""`vocalis console AGENT_REF`: talk to an agent with the local microphone and speaker.

Why: the quickest live check of an agent on a laptop. Needs the optional `console` extra
(`sounddevice`); without an audio device it says so in one line and exits 2.
"""

from __future__ import annotations

import argparse
import textwrap

from vocalis.app.endpoint import add_endpoint_arguments

EPILOG = """\
examples:
  vocalis console examples/assistant_with_tools.py:agent
  (install the extra first: uv sync --extra console; use headphones to avoid echo)
  vocalis console examples/assistant_with_tools.py:agent --text   (no microphone)
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = textwrap.fill(
        "Talk to an agent through the local microphone and speaker, with the live heard "
        "transcript in the terminal."
    )
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "agent_ref", metavar="AGENT_REF", help="path/to/file.py:name or module:name"
    )
    parser.add_argument(
        "--text",
        action="store_true",
        help="type instead of talking, read instead of listening (no audio device needed; "
        "the same as vocalis chat)",
    )
    parser.add_argument("--input-device", metavar="ID", help="sounddevice input device")
    parser.add_argument("--output-device", metavar="ID", help="sounddevice output device")
    add_endpoint_arguments(parser)


def run(args: argparse.Namespace) -> int:
    # Imported here so `vocalis console --help` stays instant.
    if args.text:
        from vocalis.app.chat_run import chat_command

        code: int = chat_command(args)
        return code
    from vocalis.app.console_run import console_command

    return console_command(args)
