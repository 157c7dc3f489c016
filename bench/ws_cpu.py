"""Per-session CPU of the WebSocket serving layer: N Twilio streams, real-time both ways.

Why it exists: the HTTP/WebSocket stack under `vocalis serve` (websockets' own server before,
Starlette + uvicorn after) runs for every 20 ms frame of every call; swapping it must not eat
the per-session CPU budget. This bench isolates that layer: the server process runs the real
`serve_twilio` endpoint with an echo call (caller audio decoded, resampled to 24 kHz and
played back through the real `TwilioAudioSink`: μ-law encode, base64, marks), and a client
process streams N calls of 20 ms μ-law frames in real time and acknowledges every mark.

Reported: server CPU seconds per call per second of call (process CPU over the window / N /
window), the server's RSS, and the clients' frame lag (how late the echo came back, p99).
Run it under the team's bench lock (timing-sensitive):

    flock /work/team/bench.lock uv run --frozen python -m bench.ws_cpu --calls 20 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
from typing import Any

from bench.common import append_run, bench_server, echo_call, log, server_cpu_window, stats

TOKEN = "bench-token-0123456789"
FRAME_S = 0.02
START = {
    "event": "start",
    "streamSid": "MZbench",
    "start": {
        "streamSid": "MZbench",
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    },
}


# =========================================================================== server process


async def _server() -> None:
    from vocalis.transports.twilio import serve_twilio

    endpoint = await serve_twilio(echo_call, "127.0.0.1", 0, token=TOKEN)
    print(endpoint.port, flush=True)  # the parent reads the port from our stdout
    async with endpoint:
        await endpoint.serve_forever()


# =========================================================================== client side


async def _call(port: int, seconds: float, lags: list[float], counts: list[int]) -> None:
    from websockets.asyncio.client import connect

    payload = base64.b64encode(b"\x7f" * 160).decode()
    media = json.dumps({"event": "media", "media": {"payload": payload}})
    url = f"ws://127.0.0.1:{port}/twilio/{TOKEN}"
    async with connect(url, compression=None, max_size=2**20) as ws:
        await ws.send(json.dumps(START))
        loop = asyncio.get_running_loop()
        start = loop.time()
        sent_at: list[float] = []

        async def reader() -> None:
            received = 0
            async for raw in ws:
                message = json.loads(raw)
                if message.get("event") == "media":
                    received += 1
                    # 3 outbound 20 ms frames at 8 kHz per 60 ms; compare to send times.
                    index = received - 1
                    if index < len(sent_at):
                        lags.append(loop.time() - sent_at[index])
                elif message.get("event") == "mark":
                    await ws.send(json.dumps({"event": "mark", "mark": message["mark"]}))
            counts.append(received)

        task = asyncio.create_task(reader())
        n = 0
        while loop.time() - start < seconds:
            sent_at.append(loop.time())
            await ws.send(media)
            n += 1
            await asyncio.sleep(max(0.0, start + n * FRAME_S - loop.time()))
        await ws.send(json.dumps({"event": "stop", "stop": {}}))
        await asyncio.wait_for(task, 10)


async def _measure(
    pid: int, port: int, calls: int, seconds: float, warmup: float
) -> dict[str, Any]:
    lags: list[float] = []
    counts: list[int] = []
    tasks = []
    for _ in range(calls):  # calls arrive 10 ms apart, as a busy line would
        tasks.append(asyncio.create_task(_call(port, warmup + seconds, lags, counts)))
        await asyncio.sleep(0.01)
    window = await server_cpu_window(pid, calls, seconds, warmup, tasks)
    return {
        **window,
        "echo_lag_s": stats(lags),
        "frames_echoed_min": min(counts) if counts else 0,
    }


def _run_against_server(calls: int, seconds: float, warmup: float) -> dict[str, Any]:
    with bench_server("bench.ws_cpu", "--server") as (pid, port):
        return asyncio.run(_measure(pid, port, calls, seconds, warmup))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--label", default="current", help="name of this run in the JSON")
    args = parser.parse_args(argv)
    if args.server:
        asyncio.run(_server())
        return 0
    result = _run_against_server(args.calls, args.seconds, args.warmup)
    result["label"] = args.label
    log(json.dumps(result))
    append_run("ws_cpu", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
