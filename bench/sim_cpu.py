"""Sim-server CPU per session: what one simulated call costs the server process.

Why: the sim's HTTP/WebSocket layer moved from websockets' own server to Starlette + uvicorn
(needed for real HTTP endpoints with bodies); this measures whether that costs real CPU per
session. N clients each stream a caller line plus silence in 20 ms frames at real time (server
VAD answers every cycle with a scripted two-message response at ``--pace``) for ``--seconds``;
the result is the server process's CPU seconds per session-minute, plus total CPU as a share
of one core. Run it under ``flock /work/team/bench.lock`` on a shared machine::

    python -m bench.sim_cpu --sessions 50 --seconds 20 [--tls]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import ssl
import time
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench.common import (
    ANSWER,
    FRAME_MS,
    FRAME_SAMPLES,
    PREAMBLE,
    REPO,
    caller_cycle,
    machine,
    sim_process,
    write_scenario,
)

PERIOD_S = 6.0


async def _caller(ws: ClientConnection, frames: list[str], until: float) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    index = 0
    while loop.time() < until:
        payload = frames[index % len(frames)]
        await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": payload}))
        index += 1
        await asyncio.sleep(max(0.0, start + index * FRAME_MS / 1000 - loop.time()))


async def _session(url: str, frames: list[str], until: float, tls: ssl.SSLContext | None) -> int:
    done = 0
    headers = {"Authorization": "Bearer sk-bench-local"}
    async with connect(url, additional_headers=headers, max_size=None, ssl=tls) as ws:
        sender = asyncio.create_task(_caller(ws, frames, until))
        try:
            async with asyncio.timeout(max(0.1, until - asyncio.get_running_loop().time())):
                async for message in ws:
                    if '"response.done"' in str(message)[:40]:
                        done += 1
        except TimeoutError:
            pass
        finally:
            sender.cancel()
    return done


async def measure(sessions: int, seconds: float, pace: float, tls: bool) -> dict[str, Any]:
    cycle = caller_cycle(PERIOD_S)
    frames = [
        base64.b64encode(cycle[i : i + FRAME_SAMPLES].tobytes()).decode()
        for i in range(0, cycle.shape[0], FRAME_SAMPLES)
    ]
    scenario = write_scenario(
        REPO / "out" / "bench" / "sim_cpu.json", [(PREAMBLE, ANSWER)], repeat=1000
    )
    extra = ["--tls"] if tls else []
    async with sim_process(scenario, pace=pace, extra_args=extra) as sim:
        context = None
        if tls:
            from vocalis.sim.tls import client_ssl_context, ensure_local_certificate

            context = client_ssl_context(ensure_local_certificate())
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        cpu0, wall0 = sim.cpu_seconds(), time.perf_counter()
        results = await asyncio.gather(
            *(_session(sim.url, frames, until, context) for _ in range(sessions))
        )
        cpu = sim.cpu_seconds() - cpu0
        wall = time.perf_counter() - wall0
    return {
        "sessions": sessions,
        "seconds": round(wall, 2),
        "pace": pace,
        "tls": tls,
        "responses": sum(results),
        "server_cpu_s": round(cpu, 3),
        "server_cores": round(cpu / wall, 3),
        "cpu_ms_per_session_minute": round(cpu * 1000 / sessions / (wall / 60), 1),
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--pace", type=float, default=1.0)
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    result = asyncio.run(measure(args.sessions, args.seconds, args.pace, args.tls))
    result["label"] = args.label
    print(json.dumps(result))
    out = REPO / "bench" / "results" / "sim_cpu.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with Path(out).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
