"""`vocalis chat AGENT_REF`: talk to an agent in text — no microphone, no speaker.

Why: the quickest check of an agent's instructions and tools, over SSH, in CI or on a laptop
without audio. The model is asked for text (no audio is generated or billed), tool calls show
as they run, and `--history` writes what was said. Offline by default when no
`OPENAI_API_KEY` is set: the embedded sim-server answers (scripted with `--scenario`).
Lines come from the terminal, or from a pipe (`echo "hi" | vocalis chat agent.py`: one message
per line, each answered before the next is sent).
"""

from __future__ import annotations

import argparse
import textwrap

from vocalis.app.cli.options import add_output_arguments
from vocalis.app.endpoint import add_endpoint_arguments

EPILOG = """\
examples:
  vocalis chat examples/assistant_with_tools.py:agent
  vocalis chat examples/assistant_with_tools.py:agent --offline \\
      --scenario examples/scenarios/preamble_tool_answer.yaml --history out/chat.json
  printf 'Hello\\nWhat is the weather in Paris?\\n' | vocalis chat my_agent.py

In the terminal: Enter sends a message; /quit, Ctrl-D or Ctrl-C ends the chat.
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = textwrap.fill(
        "Chat with an agent in text: type messages, read its answers and tool calls. "
        "No audio device needed."
    )
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "agent_ref", metavar="AGENT_REF", help="path/to/file.py:name or module:name"
    )
    add_endpoint_arguments(parser)
    add_output_arguments(parser, record=False, timeline=False)
    parser.add_argument(
        "--turn-timeout",
        type=float,
        default=60.0,
        metavar="S",
        help="give up on an answer after S seconds (default: 60)",
    )


def run(args: argparse.Namespace) -> int:
    # Imported here so `vocalis chat --help` stays instant.
    from vocalis.app.chat_run import chat_command

    code: int = chat_command(args)
    return code
