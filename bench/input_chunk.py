"""``python -m bench.input_chunk``: what batching caller audio costs in turn detection.

`OpenAIRealtimeModel(input_chunk_ms=...)` sends the caller's 20 ms frames in appends of that
many ms. The provider's VAD then hears audio up to one chunk minus one frame later. This
measures it end to end against `vocalis sim-server` in its own process (server VAD on real
espeak speech): per chunk size, the wall time from the moment the caller *spoke* the first /
last speech frame (the frame was handed to the client) to the moment the client received
``speech_started`` / ``speech_stopped``. The 20 ms row (one append per frame) is the baseline
of the same run; the numbers include the server's own VAD windows (silence duration, padding),
so only the differences between rows are the cost of batching. Each chunk size runs with
quiet batching off (``--quiet 0``) and on (200 ms, the default): the baseline row is the
first chunk size with the first quiet value.

Output: ``bench/results/input_chunk.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    API_KEY,
    FRAME_MS,
    RATE,
    REPO,
    RESULTS,
    caller_speech,
    frames_of,
    log,
    machine,
    sim_process,
    stats,
    write_json,
    write_scenario,
)
from vocalis.providers.base import InputSpeechStarted, InputSpeechStopped, SessionOptions
from vocalis.providers.openai import OpenAIRealtimeModel

SILENCE_S = 1.2


async def _turns(base_url: str, chunk_ms: int, turns: int, quiet_ms: int) -> dict[str, list[float]]:
    """`turns` caller lines at real time; latency of the VAD events per turn (ms)."""
    model = OpenAIRealtimeModel(
        base_url=base_url, api_key=API_KEY, input_chunk_ms=chunk_ms, quiet_input_chunk_ms=quiet_ms
    )
    session = await model.connect(SessionOptions(output_modalities=("text",)))
    speech = caller_speech()
    silence = np.zeros(int(SILENCE_S * RATE), dtype=np.int16)
    frames = frames_of(np.concatenate([speech, silence]))
    speech_frames = -(-speech.shape[0] // (RATE * FRAME_MS // 1000))
    seen: dict[type, float] = {}

    async def watch() -> None:
        async for event in session.events():
            if isinstance(event, InputSpeechStarted | InputSpeechStopped):
                seen.setdefault(type(event), time.perf_counter())

    watcher = asyncio.create_task(watch())
    out: dict[str, list[float]] = {"speech_started_ms": [], "speech_stopped_ms": []}
    try:
        for _ in range(turns):
            seen.clear()
            start = time.perf_counter()
            first_spoken = last_spoken = 0.0
            for k, frame in enumerate(frames):
                delay = start + k * FRAME_MS / 1000 - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                session.append_audio(frame)
                if k == 0:
                    first_spoken = time.perf_counter()
                if k == speech_frames - 1:
                    last_spoken = time.perf_counter()
            await asyncio.sleep(0.2)
            if InputSpeechStarted in seen and InputSpeechStopped in seen:
                out["speech_started_ms"].append((seen[InputSpeechStarted] - first_spoken) * 1e3)
                out["speech_stopped_ms"].append((seen[InputSpeechStopped] - last_spoken) * 1e3)
    finally:
        watcher.cancel()
        await session.aclose()
    return out


async def run(chunks: list[int], turns: int, quiet: list[int] | None = None) -> dict[str, Any]:
    scratch = REPO / "out" / "bench"
    quiet = quiet or [0]
    scenario = write_scenario(
        scratch / "input_chunk.json", [["Okay."]], repeat=4 * turns * len(quiet)
    )
    rows: list[dict[str, Any]] = []
    async with sim_process(scenario, pace=2.0) as sim:
        for quiet_ms in quiet:
            for chunk in chunks:
                got = await _turns(sim.base_url, chunk, turns, quiet_ms)
                row: dict[str, Any] = {
                    "input_chunk_ms": chunk,
                    "quiet_input_chunk_ms": quiet_ms,
                    **{k: stats(v) for k, v in got.items()},
                }
                rows.append(row)
                log(
                    f"input_chunk {chunk} ms (quiet {quiet_ms} ms): speech_started p50 "
                    f"{row['speech_started_ms']['p50']} ms, speech_stopped p50 "
                    f"{row['speech_stopped_ms']['p50']} ms"
                )
    base = rows[0]
    for row in rows:
        for key in ("speech_started_ms", "speech_stopped_ms"):
            row[f"{key}_added_p50"] = round(row[key]["p50"] - base[key]["p50"], 1)
    return {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine(), "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.input_chunk")
    parser.add_argument("--chunks", default="20,40,100")
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument(
        "--quiet", default="0,200", help="quiet_input_chunk_ms values (0 = quiet batching off)"
    )
    parser.add_argument("--results", help="results directory (default bench/results)")
    args = parser.parse_args(argv)
    chunks = [int(x) for x in args.chunks.split(",")]
    data = asyncio.run(run(chunks, args.turns, [int(x) for x in args.quiet.split(",")]))
    out = write_json("input_chunk", data, Path(args.results) if args.results else RESULTS)
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
