"""`vocalis demo` (what `make demo` runs): a real spoken conversation, offline, with proof.

Why: a newcomer with no API key and no audio device should see, in under a minute, the thing
vocalis exists for — a multi-message answer (preamble + tool call + answer), a barge-in, and
a record of exactly what the caller heard. Everything is real except the model: the embedded
sim-server speaks the OpenAI Realtime GA protocol with espeak-ng speech, the agent runs on the
real runtime and the real OpenAI client, and a simulated caller speaks (espeak-ng, another
voice) and interrupts the second answer.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from vocalis.app.cli.options import add_quiet_argument

EPILOG = """\
what happens:
  1. the caller asks about the weather; the agent answers with a preamble, calls get_weather
     and answers with the result;
  2. the caller asks a second question and barges in during the answer (three messages): the
     second message is cut, the third arrived but never played; the history keeps only what
     was heard, the provider's copy is truncated to match and the unheard message deleted;
  3. the outputs are checked (a truncated message, on both sides) and written.

outputs (in --out, default out/demo/):
  conversation.wav  stereo: caller left, agent as actually played right
  history.json      the heard history: {"items": [...]}
  events.jsonl      every session event (states, items, tool calls, metrics)
  timeline.html     one self-contained page: generated vs heard per message, cut points,
                    tool calls, turn latencies — open it in a browser

Exit codes: 0 the conversation went as scripted, 1 something failed (the reason is printed).
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = textwrap.fill(
        "Offline end-to-end demo: embedded sim-server, an example agent with a tool and a "
        "simulated caller who speaks and barges in; live transcript; proof files in out/demo/."
    )
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("out/demo"),
        metavar="DIR",
        help="where to write the outputs (default: out/demo)",
    )
    parser.add_argument(
        "--pace",
        type=float,
        default=2.0,
        metavar="X",
        help="sim-server generation speed vs real time (playback is always real time; "
        "default: 2, like the real API which streams faster than real time)",
    )
    parser.add_argument(
        "--barge-in-ms",
        type=float,
        default=2400.0,
        metavar="MS",
        help="how far into the second answer the caller interrupts (default: 2400)",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=60.0,
        metavar="N",
        help="fail when the demo takes longer than N seconds (default: 60)",
    )
    parser.add_argument(
        "--provider",
        choices=("openai", "gemini"),
        default="openai",
        help="the protocol the embedded sim-server speaks: openai (default) or gemini — the "
        "same conversation on Gemini Live, whose history cannot be truncated (the heard "
        "history is re-seeded into a fresh session instead; docs/heard-contract.md)",
    )
    add_quiet_argument(parser, "the summary")


def run(args: argparse.Namespace) -> int:
    # Imported here so `vocalis demo --help` stays instant.
    from vocalis.app.demo_run import run_demo

    return run_demo(args)
