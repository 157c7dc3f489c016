"""Sim-server CPU per session: what one simulated call costs the server process.

Why: the sim-server is the provider of every density benchmark on the same machine, so its CPU
per session decides how many sessions fit next to the agent. Two loads (``--load``):

* ``turns``: N clients each stream a caller line plus silence in 20 ms frames at real time
  (server VAD answers every cycle with a scripted two-message response at ``--pace``).
* ``continuous`` (the density load of issue #17): every client appends ``--append-ms`` of
  silence at real time (server VAD on, never triggered) and asks for the next response
  (``response.create``) as soon as the previous one would have finished playing; responses are
  a ~1 s and a ~9 s message generated at ``--pace`` (2, as in ``bench.density``).

The result is the server process's CPU per session-second (and per session-minute, the older
unit) over a window after a warm-up, plus total CPU in cores. It measures CPU of fixed work,
so on a busy machine compare builds interleaved, e.g. ``PYTHONPATH=<other checkout>/src`` for
the old one. Run it under ``flock /work/team/bench.lock`` on a shared machine::

    python -m bench.sim_cpu --sessions 50 --seconds 20 [--tls]
    python -m bench.sim_cpu --load continuous --sessions 50 --seconds 15
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import ssl
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from bench.common import (
    ANSWER,
    CONTINUOUS_RESPONSE,
    FRAME_MS,
    FRAME_SAMPLES,
    PREAMBLE,
    RATE,
    REPO,
    caller_cycle,
    connect_sim,
    machine,
    sim_process,
    write_scenario,
)
from vocalis.sim.log import b64_len

PERIOD_S = 6.0
WARMUP_S = 3.0
# One response cycle of the continuous load: ~1 s + ~9 s of audio, played in real time.
CYCLE_S = 10.0
OPEN_TIMEOUT_S = 30.0
_RESPONSE_CREATE = '{"type":"response.create"}'
_DELTA_PREFIX = '{"type":"response.output_audio.delta"'


def _connect(url: str, tls: ssl.SSLContext | None, **options: Any) -> connect:
    """A client connection to the sim as every bench session of this measure opens it."""
    return connect_sim(url, max_size=None, ssl=tls, **options)


def _append(pcm: bytes) -> str:
    """The ``input_audio_buffer.append`` text frame carrying ``pcm``."""
    return json.dumps(
        {"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}
    )


async def _paced(
    ws: ClientConnection, messages: Sequence[str], period_s: float, until: float
) -> None:
    """Send ``messages`` in a cycle, one per ``period_s`` at real time (late sends catch up)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    index = 0
    while loop.time() < until:
        await ws.send(messages[index % len(messages)])
        index += 1
        await asyncio.sleep(max(0.0, start + index * period_s - loop.time()))


async def _session(url: str, appends: list[str], until: float, tls: ssl.SSLContext | None) -> int:
    done = 0
    async with _connect(url, tls) as ws:
        sender = asyncio.create_task(_paced(ws, appends, FRAME_MS / 1000, until))
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


class _Listener:
    """One continuous-load client's view of the audio it receives: when a response's audio
    would have finished playing in real time, it asks for the next one."""

    def __init__(self) -> None:
        self.connected = False
        self.responses = 0
        self.deltas = 0
        self.audio_ms = 0.0
        self._first: float | None = None  # loop time of this response's first audio delta
        self._response_ms = 0.0

    def on_message(self, message: str | bytes, now: float) -> float | None:
        """Account one server frame; returns the loop time to ask for the next response at."""
        text = message if isinstance(message, str) else message.decode()
        if text.startswith(_DELTA_PREFIX):
            samples = b64_len(json.loads(text)["delta"]) // 2
            self.deltas += 1
            ms = samples * 1000.0 / RATE
            self.audio_ms += ms
            self._response_ms += ms
            if self._first is None:
                self._first = now
            return None
        if '"response.done"' not in text[:40]:
            return None
        self.responses += 1
        played = (self._first if self._first is not None else now) + self._response_ms / 1000
        self._first, self._response_ms = None, 0.0
        return max(now, played)

    def counts(self) -> tuple[int, int, float]:
        return self.responses, self.deltas, self.audio_ms


async def _continuous_session(
    listener: _Listener,
    url: str,
    append: str,
    append_ms: int,
    delay: float,
    until: float,
    tls: ssl.SSLContext | None,
) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(delay)
    async with _connect(url, tls, open_timeout=OPEN_TIMEOUT_S) as ws:
        listener.connected = True
        sender = asyncio.create_task(_paced(ws, [append], append_ms / 1000, until))
        await ws.send(_RESPONSE_CREATE)
        try:
            async with asyncio.timeout(max(0.1, until - loop.time())):
                async for message in ws:
                    at = listener.on_message(message, loop.time())
                    if at is not None:
                        await asyncio.sleep(at - loop.time())
                        await ws.send(_RESPONSE_CREATE)
        except TimeoutError:
            pass
        finally:
            sender.cancel()


async def _synthesize_first(url: str, tls: ssl.SSLContext | None) -> None:
    """One response up to its first audio delta: the sim renders (espeak) and caches the
    scripted speech once, before the measured sessions start (rendering is not per session)."""
    async with _connect(url, tls) as ws:
        await ws.send(_RESPONSE_CREATE)
        async for message in ws:
            if str(message).startswith(_DELTA_PREFIX):
                return


async def measure_continuous(
    sessions: int,
    seconds: float,
    pace: float,
    tls: bool,
    append_ms: int,
    warmup: float = WARMUP_S,
    stagger: float = CYCLE_S,
) -> dict[str, Any]:
    """Server CPU per session-second under the continuous-speech load (module docs).

    Sessions start spread over ``stagger`` seconds (one response cycle by default), so the
    window sees a steady mix of generating and listening sessions whatever its length; it
    opens ``warmup`` seconds after the last session started."""
    append = _append(bytes(RATE * append_ms // 1000 * 2))  # silence
    scenario = write_scenario(
        REPO / "out" / "bench" / "sim_cpu_continuous.json", [CONTINUOUS_RESPONSE], repeat=1000
    )
    extra = ["--tls"] if tls else []
    listeners = [_Listener() for _ in range(sessions)]
    async with sim_process(scenario, pace=pace, extra_args=extra) as sim:
        context = _client_tls() if tls else None
        await _synthesize_first(sim.url, context)
        loop = asyncio.get_running_loop()
        until = loop.time() + stagger + warmup + seconds
        clients = asyncio.gather(
            *(
                _continuous_session(
                    listener, sim.url, append, append_ms, i * stagger / sessions, until, context
                )
                for i, listener in enumerate(listeners)
            ),
            return_exceptions=True,
        )
        await asyncio.sleep(stagger + warmup)
        before = [x.counts() for x in listeners]
        cpu0, wall0 = sim.cpu_seconds(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu = sim.cpu_seconds() - cpu0
        wall = time.perf_counter() - wall0
        after = [x.counts() for x in listeners]
        rss = sim.rss()
        ended = await clients
    failures = [repr(x)[:120] for x in ended if isinstance(x, BaseException)]
    connected = sum(x.connected for x in listeners)
    session_s = max(1, connected) * wall
    done, deltas, audio_ms = (
        sum(a[k] - b[k] for a, b in zip(after, before, strict=True)) for k in range(3)
    )
    return {
        "load": "continuous",
        "sessions": sessions,
        "seconds": round(wall, 2),
        "pace": pace,
        "tls": tls,
        "sim_loop": os.environ.get("VOCALIS_LOOP", "default"),
        "append_ms": append_ms,
        # What the window carried (the load actually applied): responses completed, audio
        # deltas and seconds of audio delivered per session-second.
        # A starved machine can fail handshakes; the window then measured fewer sessions.
        "connected": connected,
        "failures": failures[:5],
        "responses": done,
        "deltas_per_session_s": round(deltas / session_s, 1),
        "audio_s_per_session_s": round(audio_ms / 1000 / session_s, 2),
        "server_cpu_s": round(cpu, 3),
        "server_cores": round(cpu / wall, 3),
        "cpu_ms_per_session_s": round(cpu * 1000 / session_s, 3),
        "server_rss_mb": round(rss / 2**20, 1),
        "machine": machine(),
    }


def _client_tls() -> ssl.SSLContext:
    from vocalis.sim.tls import client_ssl_context, ensure_local_certificate

    return client_ssl_context(ensure_local_certificate())


async def measure(sessions: int, seconds: float, pace: float, tls: bool) -> dict[str, Any]:
    cycle = caller_cycle(PERIOD_S)
    appends = [
        _append(cycle[i : i + FRAME_SAMPLES].tobytes())
        for i in range(0, cycle.shape[0], FRAME_SAMPLES)
    ]
    scenario = write_scenario(
        REPO / "out" / "bench" / "sim_cpu.json", [(PREAMBLE, ANSWER)], repeat=1000
    )
    extra = ["--tls"] if tls else []
    async with sim_process(scenario, pace=pace, extra_args=extra) as sim:
        context = _client_tls() if tls else None
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        cpu0, wall0 = sim.cpu_seconds(), time.perf_counter()
        results = await asyncio.gather(
            *(_session(sim.url, appends, until, context) for _ in range(sessions))
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
    parser.add_argument("--load", choices=("turns", "continuous"), default="turns")
    parser.add_argument("--pace", type=float, help="generation speed (turns 1, continuous 2)")
    parser.add_argument("--append-ms", type=int, default=40, help="continuous: ms per append")
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--sim-loop", choices=("auto", "asyncio", "uvloop"), default="auto")
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    # The sim process inherits VOCALIS_LOOP ("auto": whatever the sim-server defaults to).
    if args.sim_loop != "auto":
        os.environ["VOCALIS_LOOP"] = args.sim_loop
    if args.load == "continuous":
        pace = 2.0 if args.pace is None else args.pace
        job = measure_continuous(args.sessions, args.seconds, pace, args.tls, args.append_ms)
    else:
        job = measure(args.sessions, args.seconds, args.pace or 1.0, args.tls)
    result = asyncio.run(job)
    result["label"] = args.label
    print(json.dumps(result))
    out = REPO / "bench" / "results" / "sim_cpu.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with Path(out).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
