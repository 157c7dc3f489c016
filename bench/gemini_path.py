"""``bench.hotpath --only gemini``: CPU of the Gemini Live client's per-frame work, alone.

Why: the OpenAI measures (``receive``, ``push``) do not run a line of the Gemini client, whose
receive core is split over `protocol.py`, `responses.py` and `inputs.py` and whose caller path
keeps the recent input for re-seeds. Both run per frame of a speaking session. No socket and
no loop (the socket side is websockets' own and shared with nothing of ours): a fixed
workload in this process, best of ``reps`` runs (process CPU time), steady on a busy machine.

* ``gemini_receive_us_per_audio_s``: model turns as the service sends them — 40 ms audio
  parts of 24 kHz PCM as JSON text, an output transcription word every 200 ms, then
  ``generationComplete`` and ``turnComplete`` — through ``json.loads`` and
  `GeminiProtocol.receive` (base64 decode, the item account and its bounds, the server
  record, the value events): CPU µs per received audio-second.
* ``gemini_send_us_per_frame``: a caller's 20 ms frames at 16 kHz through what
  ``append_audio`` does for each (the recent input kept for re-seeds, the ``realtimeInput``
  text): CPU µs per frame.
"""

from __future__ import annotations

import base64
import json
import time

import numpy as np

from vocalis.providers.gemini import wire
from vocalis.providers.gemini.input_audio import RecentInput
from vocalis.providers.gemini.protocol import GeminiProtocol
from vocalis.sim.gemini import messages as msg

PART_MS = 40
TURN_S = 10
WORD_EVERY_MS = 200


def _turn_frames() -> list[str]:
    """One 10 s model turn as the service's JSON text frames."""
    rng = np.random.default_rng(7)
    samples = wire.OUTPUT_RATE * PART_MS // 1000
    frames: list[str] = []
    for k in range(TURN_S * 1000 // PART_MS):
        pcm = rng.integers(-3000, 3000, size=samples).astype("<i2").tobytes()
        frames.append(json.dumps(msg.audio_part(base64.b64encode(pcm).decode())))
        if (k * PART_MS) % WORD_EVERY_MS == 0:
            frames.append(json.dumps(msg.output_transcription(" word")))
    frames += [json.dumps(msg.generation_complete()), json.dumps(msg.turn_complete())]
    return frames


def gemini_receive(turns: int = 20, reps: int = 5) -> float:
    """CPU µs per received audio-second of the Gemini receive core (best of ``reps``)."""
    frames = _turn_frames()
    best = float("inf")
    for _ in range(reps):
        protocol = GeminiProtocol()
        cpu0 = time.process_time()
        for _turn in range(turns):
            for raw in frames:
                protocol.receive(json.loads(raw))
        best = min(best, time.process_time() - cpu0)
        # The workload ran as described: every turn a settled model item with all its audio.
        heard = [t.audio_ms for t in protocol.server_record if t.kind == "model"]
        if heard != [TURN_S * 1000.0] * turns or protocol.generating:
            raise RuntimeError(f"the Gemini core did not take {turns} whole turns: {heard}")
    return best / (turns * TURN_S) * 1e6


def gemini_send(frames: int = 20000, reps: int = 5) -> float:
    """CPU µs per 20 ms caller frame of the Gemini client's send path (best of ``reps``)."""
    rng = np.random.default_rng(7)
    pieces = list(rng.integers(-300, 300, size=(50, wire.INPUT_RATE // 50)).astype(np.int16))
    best = float("inf")
    for _ in range(reps):
        recent = RecentInput()
        cpu0 = time.process_time()
        for k in range(frames):
            samples = pieces[k % len(pieces)]
            recent.append(samples)
            wire.audio_frame(samples)
        best = min(best, time.process_time() - cpu0)
    return best / frames * 1e6


def gemini_path() -> dict[str, float]:
    return {
        "gemini_receive_us_per_audio_s": gemini_receive(),
        "gemini_send_us_per_frame": gemini_send(),
    }
