"""Per-session CPU of the WebRTC transport: N aiortc peers calling `serve_webrtc`, real time.

Why it exists: a WebRTC call costs the server far more than a WebSocket one — Opus decode of
the caller, Opus encode of one 20 ms frame every 20 ms (silence included), SRTP both ways,
DTLS/SCTP for the data channel — and that decides how many calls one worker can hold. The
server process runs the real `serve_webrtc` endpoint with an echo call (the caller's audio,
resampled to 24 kHz, played back as one segment through `WebRTCAudioSink`); a client process
opens N peer connections (the offer over HTTP, a microphone track, the data channel) and
reports playout positions about every 50 ms like the page does.

`--bare` runs the same clients against aiortc alone (same media, no vocalis) for a baseline.

Reported: server CPU ms per call per second of call (process CPU over the window / N /
window, all threads: aiortc encodes in a thread pool) and the server's RSS. Run it under the
team's bench lock (timing-sensitive):

    flock /work/team/bench.lock uv run --frozen python -m bench.webrtc_cpu --calls 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import time
import urllib.request
from typing import Any

from bench.common import (
    append_run,
    bench_server,
    echo_call,
    log,
    proc_cpu_seconds,
    server_cpu_window,
)

TOKEN = "bench-token-0123456789"


# =========================================================================== server process


async def _server() -> None:
    from vocalis.transports.webrtc import WebRTCLimits, serve_webrtc

    served = await serve_webrtc(
        echo_call, "127.0.0.1", 0, token=TOKEN, limits=WebRTCLimits(max_pending=64)
    )
    print(served.port, flush=True)  # the parent reads the port from our stdout
    async with served:
        await served.serve_forever()


async def _bare_server() -> None:
    """Baseline: aiortc alone with the same media (a paced 48 kHz track out, the caller's
    track decoded and dropped, a data channel), none of vocalis. The difference to the real
    server is what vocalis' transport costs."""
    import fractions

    import av
    import numpy as np
    import uvicorn
    from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection
    from aiortc import RTCSessionDescription as Description
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    class Silence(MediaStreamTrack):
        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self.n = 0
            self.t0 = time.monotonic()

        async def recv(self) -> av.AudioFrame:
            await asyncio.sleep(max(0.0, self.t0 + self.n * 0.02 - time.monotonic()))
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 960), np.int16), format="s16", layout="mono"
            )
            frame.sample_rate, frame.pts = 48000, self.n * 960
            frame.time_base = fractions.Fraction(1, 48000)
            self.n += 1
            return frame

    async def drain(track: MediaStreamTrack) -> None:
        while True:
            await track.recv()

    keep: set[Any] = set()

    async def offer(request: Request) -> JSONResponse:
        data = await request.json()
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        keep.add(pc)
        pc.on("track", lambda track: keep.add(asyncio.ensure_future(drain(track))))
        pc.on("datachannel", lambda channel: channel.on("message", lambda _m: None))
        await pc.setRemoteDescription(Description(data["sdp"], data["type"]))
        pc.addTrack(Silence())
        await pc.setLocalDescription(await pc.createAnswer())
        return JSONResponse({"sdp": pc.localDescription.sdp, "type": pc.localDescription.type})

    app = Starlette(routes=[Route("/webrtc/offer", offer, methods=["POST"])])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    await uvicorn.Server(config).serve(sockets=[sock])


# =========================================================================== client side


def _post(url: str, body: bytes) -> dict[str, str]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, str] = json.loads(response.read())
    return answer


async def _call(port: int, seconds: float, received: list[int]) -> None:
    from aiortc import AudioStreamTrack, RTCPeerConnection, RTCSessionDescription

    pc = RTCPeerConnection()
    channel = pc.createDataChannel("vocalis")
    pc.addTrack(AudioStreamTrack())  # the caller's microphone (silence, Opus-encoded)
    frames = 0
    base: list[int] = []

    async def play(track: Any) -> None:
        nonlocal frames
        while True:
            await track.recv()
            frames += 1

    tasks: list[asyncio.Task[None]] = []
    pc.on("track", lambda track: tasks.append(asyncio.ensure_future(play(track))))

    def on_message(raw: str) -> None:
        message = json.loads(raw)
        if message["type"] == "start" and message["rtp"] is not None:
            base[:] = [message["rtp"] - frames * 960]  # stream sample 0 on this receiver

    channel.on("message", on_message)
    opened = asyncio.Event()
    channel.on("open", opened.set)
    await pc.setLocalDescription(await pc.createOffer())
    offer = json.dumps({"type": "offer", "sdp": pc.localDescription.sdp}).encode()
    url = f"http://127.0.0.1:{port}/webrtc/offer?token={TOKEN}"
    answer = await asyncio.to_thread(_post, url, offer)
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
    await opened.wait()
    channel.send(json.dumps({"type": "ready"}))
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        # The position a page would report (frames decoded ≈ frames played); before the first
        # `start` (or against the bare server) the report is sent anyway: same traffic.
        rtp = (base[0] + max(0, frames - 3) * 960) % 2**32 if base else 0
        channel.send(json.dumps({"type": "pos", "rtp": rtp}))
        await asyncio.sleep(0.05)
    received.append(frames)
    channel.send(json.dumps({"type": "hangup"}))
    for task in tasks:
        task.cancel()
    await pc.close()


async def _measure(
    pid: int, port: int, calls: int, seconds: float, warmup: float
) -> dict[str, Any]:
    received: list[int] = []
    tasks = []
    for _ in range(calls):
        tasks.append(asyncio.create_task(_call(port, warmup + seconds, received)))
        await asyncio.sleep(0.05)
    window = await server_cpu_window(pid, calls, seconds, warmup, tasks)
    return {**window, "frames_received_min": min(received) if received else 0}


def _run_against_server(calls: int, seconds: float, warmup: float, *, bare: bool) -> dict[str, Any]:
    with bench_server("bench.webrtc_cpu", "--bare-server" if bare else "--server") as (pid, port):
        idle0, t0 = proc_cpu_seconds(pid), time.monotonic()
        time.sleep(2.0)
        idle = (proc_cpu_seconds(pid) - idle0) / (time.monotonic() - t0)
        result = asyncio.run(_measure(pid, port, calls, seconds, warmup))
        result["server_idle_cpu_cores"] = round(idle, 4)
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bare-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--bare", action="store_true", help="baseline: aiortc alone, the same media, no vocalis"
    )
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--label", default="current", help="name of this run in the JSON")
    args = parser.parse_args(argv)
    if args.server or args.bare_server:
        asyncio.run(_bare_server() if args.bare_server else _server())
        return 0
    result = _run_against_server(args.calls, args.seconds, args.warmup, bare=args.bare)
    result["label"] = args.label
    log(json.dumps(result))
    append_run("webrtc_cpu", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
