"""Write a caller's question as a WAV file (espeak-ng speech), for `vocalis run --input`.

    uv run python examples/make_caller_wav.py "What is the weather in Paris?" out/caller.wav

Several sentences become several turns, separated by a pause long enough for the agent to
answer (`--gap`, seconds).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vocalis.audio.espeak import synthesize
from vocalis.audio.frame import AudioFrame
from vocalis.audio.wav import write_wav

RATE = 16000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("text", nargs="+", help="one argument per caller turn")
    parser.add_argument("output", type=Path, help="WAV file to write (mono 16 kHz)")
    parser.add_argument("--gap", type=float, default=6.0, help="seconds of silence after a turn")
    parser.add_argument("--voice", default="en-us+f3", help="espeak-ng voice")
    args = parser.parse_args()
    silence = np.zeros(int(RATE * 0.5), dtype=np.int16)
    parts = [silence]
    for turn in args.text:
        parts.append(synthesize(turn, voice=args.voice, sample_rate=RATE).samples)
        parts.append(np.zeros(int(RATE * args.gap), dtype=np.int16))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    write_wav(args.output, AudioFrame(np.concatenate(parts), RATE))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
