"""`vocalis run AGENT_REF --input caller.wav`: any agent, any OpenAI-protocol endpoint, offline.

Why: the fastest way to see what an agent does with a real spoken question — and to test it in
CI — is a WAV file in and a recording, the heard history and the events out. The caller's WAV
is streamed at real time (so server VAD and barge-in behave as on a call), the agent's audio is
played on a real-time paced sink, and after the input ends the run waits until no response is
active and all playout finished before writing the outputs.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from vocalis.app.cli.options import add_output_arguments, add_quiet_argument
from vocalis.app.endpoint import add_endpoint_arguments

EPILOG = """\
examples:
  vocalis run examples/minimal_agent.py:agent --input caller.wav
  vocalis run examples/assistant_with_tools.py:agent --input caller.wav \\
      --record out/run.wav --history out/history.json --events out/events.jsonl
  vocalis run my_pkg.agents:support --input call.wav --realtime-url ws://127.0.0.1:8765/v1/realtime

AGENT_REF is path/to/file.py:name or package.module:name naming an Agent, or a function
without arguments returning one (":agent" is assumed when ":name" is left out).
History JSON: {"items": [...]}, each with id, type (message | function_call |
function_call_output), role, text (what was heard), interrupted, played_ms; tool items add
name, arguments, output. Exit codes: 0 done, 1 the conversation failed, 2 bad arguments,
agent, endpoint or WAV.
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = textwrap.fill(
        "Run an agent on a caller WAV: the caller audio is streamed at real time to the agent, "
        "the agent's answers are played on a real-time sink, and the heard history, events and "
        "a stereo recording (caller left, agent as played right) are written."
    )
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("agent_ref", metavar="AGENT_REF", help="the agent to run (see below)")
    parser.add_argument(
        "--input",
        "-i",
        required=True,
        type=Path,
        metavar="WAV",
        help="caller audio: 16-bit PCM WAV, mono (stereo is mixed down), any sample rate",
    )
    add_endpoint_arguments(parser)
    add_output_arguments(parser, record=True, timeline=True)
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=300.0,
        metavar="N",
        help="give up (exit 1) when the run takes longer than N seconds (default: 300)",
    )
    add_quiet_argument(parser, "errors")


def run(args: argparse.Namespace) -> int:
    # Imported here so `vocalis run --help` stays instant.
    from vocalis.app.run_wav import run_wav

    return run_wav(args)
