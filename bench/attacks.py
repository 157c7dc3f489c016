"""The red-team attacks of issue #14, measured end to end against a vocalis source tree.

Each attack runs the real CLI (`vocalis run` / `vocalis serve`) as a subprocess of a chosen
source tree (`--src`, default this checkout), so the same numbers can be taken before and after
a change (`git worktree add /tmp/before <commit>` then `--src /tmp/before/src`):

* `transcript` / `agent-text`: a provider streams caller-transcript deltas, or an agent
  transcript that never ends (`--deltas` × 200 chars); `huge-audio`: one audio delta of
  `--deltas`/10 seconds → peak RSS of `vocalis run`, size of its events.jsonl, wall time.
* `empty-items` / `gemini-empty-items`: an OpenAI / Gemini Live provider sends `--deltas`
  items no text or audio bound sees (content for ids never announced; empty turns) → the
  call's peak RSS above the same run against an idle provider (the per-call bound of
  docs/reliability.md), and the errors that ended the call (`item_budget`,
  `response_budget`); with `--pace-ms`, Gemini model turns come one at a time, each
  unheard at a heard checkpoint (the re-seed storm: the connections the service saw).
* `openai-empty-responses`: an OpenAI provider pairs `response.created` with `response.done`
  and no output, `--deltas` times, `--pace-ms` apart → the same figures (each pair is a
  settled response of the call that no text, audio or item bound saw before #14's last fix).
* `audio-flood`: a Twilio client sends caller audio as fast as it can for 5 s → seconds of
  audio the provider received (cost amplification).
* `slow-handshakes`: 1,500 unfinished request heads from 60 addresses against
  `vocalis serve --twilio` with 1,024 file descriptors → whether /livez (admin port) and
  /healthz answer, and how long a legitimate Twilio handshake + `start` takes.

Timing-sensitive: run under the bench lock. Results: bench/results/attacks.json (appended).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import REPO, log, write_json
from bench.hostile import (
    Flood,
    HostileGemini,
    HostileProvider,
    agent_text,
    empty_items,
    empty_responses,
    gemini_empty_items,
    huge_audio,
    transcript_deltas,
)
from vocalis.providers.item_bound import ITEM_BUDGET_CODE

TOKEN = "attack-bench-token-123"
RUNNER = """
import resource, sys
limit = int(sys.argv[1])
if limit:
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
from vocalis.cli import main
try:
    code = main(sys.argv[2:])
finally:
    print(f"MAXRSS_KB={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", file=sys.stderr)
sys.exit(code)
"""


def _env(src: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONUNBUFFERED": "1"}
    env.pop("OPENAI_API_KEY", None)
    env["VOCALIS_TOKEN"] = TOKEN
    return env


async def _cli(src: Path, fd_limit: int, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        RUNNER,
        str(fd_limit),
        *args,
        cwd=REPO,
        env=_env(src),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


def _caller_wav(path: Path, seconds: float = 3.0) -> None:
    import numpy as np

    from vocalis.audio.frame import AudioFrame
    from vocalis.audio.wav import write_wav

    write_wav(path, AudioFrame(np.zeros(int(24000 * seconds), dtype=np.int16), 24000))


# --------------------------------------------------------------------------- attacks


@dataclass
class CallRun:
    """What one `vocalis run` call under attack left: its output (with the peak RSS line),
    exit code, wall time, events.jsonl size, the items of its saved history and the code of
    the error that ended it."""

    text: str
    code: int | None
    wall_s: float
    events_bytes: int | None
    history_items: int | None
    # The error that ended the call (`item_budget`, `response_budget`, ...), or None.
    ended_on: str | None = None

    @property
    def item_budget(self) -> bool:
        """The call ended on the provider item bound (`ProviderLimits.max_call_items`)."""
        return self.ended_on == ITEM_BUDGET_CODE


async def _run_call(
    src: Path, url: str, *extra: str, max_seconds: float = 120, caller_s: float = 3.0
) -> CallRun:
    """One `vocalis run` call against `url` with `caller_s` of (silent) caller audio."""
    with tempfile.TemporaryDirectory() as tmp:
        wav, events = Path(tmp) / "caller.wav", Path(tmp) / "events.jsonl"
        history = Path(tmp) / "history.json"
        _caller_wav(wav, caller_s)
        started = time.monotonic()
        proc = await _cli(
            src,
            0,
            "run",
            "examples/minimal_agent.py:agent",
            "--input",
            str(wav),
            "--realtime-url",
            url,
            "--events",
            str(events),
            "--history",
            str(history),
            "--max-seconds",
            str(max_seconds),
            "--quiet",
            *extra,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 600)
        wall = time.monotonic() - started
        size = events.stat().st_size if events.exists() else None
        return CallRun(
            out.decode(errors="replace"),
            proc.returncode,
            wall,
            size,
            len(json.loads(history.read_text())["items"]) if history.exists() else None,
            _ended_on(events) if size is not None else None,
        )


def _ended_on(events: Path) -> str | None:
    """The ending error's code, from the last record (`session_closed`: a bounded log always
    keeps its most recent records). A source tree from before the session owned its end
    reason has no code there: then the first fatal error the log still holds."""
    records = [json.loads(line) for line in events.read_text().splitlines() if line]
    closed = [r for r in records if r.get("type") == "session_closed"]
    if closed and "code" in closed[-1]:
        code = closed[-1]["code"]
        return str(code) if code is not None else None
    fatal = [r for r in records if r.get("type") == "error" and r.get("recoverable") is False]
    return str(fatal[0].get("code")) if fatal else None


def _peak_rss_mb(text: str) -> float | None:
    found = re.search(r"MAXRSS_KB=(\d+)", text)
    return round(int(found.group(1)) / 1024, 1) if found else None


async def provider_flood(src: Path, attack: str, deltas: int) -> dict[str, Any]:
    """`vocalis run` against a hostile provider; its peak RSS and events.jsonl size."""
    flood = Flood(events=deltas, chunk_chars=200)
    chosen = {
        "transcript": transcript_deltas(flood),
        "agent-text": agent_text(flood),
        "huge-audio": huge_audio(deltas / 10),  # --deltas 4000: one 400 s audio delta
    }[attack]
    provider = HostileProvider(chosen)
    async with provider.serving() as url:
        run = await _run_call(src, url)
    size = run.events_bytes
    return {
        "provider_traffic_mb": round(
            deltas / 10 * 48000 * 4 / 3 / 2**20 if attack == "huge-audio" else deltas * 200 / 2**20,
            2,
        ),
        "peak_rss_mb": _peak_rss_mb(run.text),
        "events_jsonl_mb": round(size / 2**20, 2) if size is not None else None,
        "exit_code": run.code,
        "wall_s": round(run.wall_s, 1),
    }


async def _idle(send: Any) -> None:
    await asyncio.Event().wait()


async def empty_items_flood(
    src: Path, attack: str, items: int, caller_s: float = 45.0, pace_ms: float = 0.0
) -> dict[str, Any]:
    """One call's peak RSS under `items` empty items, above the same call with an idle peer.

    The idle run is the floor (interpreter, imports, one call's fixed state): what the attack
    adds above it is the call's own growth, the figure docs/reliability.md bounds per call.
    """
    gemini = attack == "gemini-empty-items"
    extra = ("--provider", "gemini") if gemini else ()
    runs: dict[str, CallRun] = {}
    connections = 0
    for name, chosen in (("idle", _idle), ("attack", None)):
        server: HostileGemini | HostileProvider
        if gemini:
            server = HostileGemini(chosen or gemini_empty_items(items, pace_ms / 1000))
        elif attack == "openai-empty-responses":
            server = HostileProvider(chosen or empty_responses(items, pace_ms / 1000))
        else:
            server = HostileProvider(chosen or empty_items(items))
        async with server.serving() as url:
            # A long caller file (the same for both): the call lasts until the flood is taken
            # in (or refused).
            runs[name] = await _run_call(src, url, *extra, max_seconds=300, caller_s=caller_s)
        if isinstance(server, HostileGemini):
            connections = server.connections  # of the attack run, the last one
    idle, attacked = _peak_rss_mb(runs["idle"].text), _peak_rss_mb(runs["attack"].text)
    run = runs["attack"]
    return {
        "items_sent": items,
        **({"pace_ms": pace_ms, "connections": connections} if gemini else {}),
        **({"pace_ms": pace_ms} if attack == "openai-empty-responses" else {}),
        "history_items": run.history_items,
        "idle_peak_rss_mb": idle,
        "peak_rss_mb": attacked,
        "call_rss_mb": round(attacked - idle, 1) if idle and attacked else None,
        "ended_item_budget": run.item_budget,
        "ended_on": run.ended_on,
        "exit_code": run.code,
        "wall_s": round(run.wall_s, 1),
    }


async def _serve(src: Path, url: str, fd_limit: int = 0) -> tuple[Any, int, int]:
    proc = await _cli(
        src,
        fd_limit,
        "serve",
        "examples/minimal_agent.py:agent",
        "--twilio",
        "--workers",
        "1",  # one process: its fd limit and memory are what the attacks measure
        "--port",
        "0",
        "--admin-port",
        "0",
        "--realtime-url",
        url,
    )
    assert proc.stdout is not None
    port = admin = 0
    async with asyncio.timeout(60):
        while not (port and admin):
            line = (await proc.stdout.readline()).decode()
            if not line:
                raise RuntimeError("vocalis serve exited")
            if m := re.search(r'Stream url="ws://[^:]+:(\d+)/', line):
                port = int(m.group(1))
            if m := re.search(r"admin: http://[^:]+:(\d+)/", line):
                admin = int(m.group(1))
    drain = asyncio.create_task(_drain(proc.stdout))
    _DRAINS.add(drain)
    drain.add_done_callback(_DRAINS.discard)
    return proc, port, admin


_DRAINS: set[asyncio.Task[None]] = set()


async def _drain(stream: asyncio.StreamReader) -> None:
    """Keep reading the server's output (a full pipe would freeze it, not the attack)."""
    while await stream.readline():
        pass


async def _stop(proc: Any) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()


def _start_message() -> str:
    return json.dumps({"event": "start", "streamSid": "MZ1", "start": {"streamSid": "MZ1"}})


async def audio_flood(src: Path, seconds: float = 5.0) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    async def idle(send: Any) -> None:
        await asyncio.Event().wait()

    provider = HostileProvider(idle)
    async with provider.serving() as url:
        proc, port, _admin = await _serve(src, url)
        try:
            payload = base64.b64encode(b"\xff" * 160).decode()
            media = json.dumps({"event": "media", "media": {"payload": payload}})
            sent = 0
            with contextlib.suppress(Exception):
                async with connect(f"ws://127.0.0.1:{port}/twilio/{TOKEN}") as ws:
                    await ws.send(_start_message())
                    end = time.monotonic() + seconds
                    while time.monotonic() < end:
                        await ws.send(media)
                        sent += 1
            await asyncio.sleep(2.0)  # let what was accepted reach the provider
        finally:
            await _stop(proc)
    return {
        "flood_wall_s": seconds,
        "caller_audio_sent_s": round(sent * 0.02, 1),
        "audio_forwarded_to_provider_s": round(provider.audio_appended_bytes / 48000, 1),
    }


async def _http_status(port: int, path: str, source: str) -> int | None:
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)), 5
        )
        writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        line = await asyncio.wait_for(reader.readline(), 5)
        writer.close()
        return int(line.split()[1])
    except (OSError, TimeoutError, IndexError, ValueError):
        return None


async def _slow_slot(port: int, source: str, stop: asyncio.Event, counts: dict[str, int]) -> None:
    """One attacker slot: an unfinished request head, reopened whenever the server drops it."""
    while not stop.is_set():
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)), 1.0
            )
        except (OSError, TimeoutError):
            counts["connect_failed"] += 1
            await asyncio.sleep(0.05)
            continue
        counts["opened"] += 1
        try:
            writer.write(b"GET /twilio/x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            stopped = asyncio.ensure_future(stop.wait())
            closed = asyncio.ensure_future(reader.read(1))
            await asyncio.wait({stopped, closed}, return_when="FIRST_COMPLETED")
            stopped.cancel()
            closed.cancel()
        except OSError:
            pass
        finally:
            writer.close()


async def _legit_handshake(port: int) -> float | None:
    from websockets.asyncio.client import connect

    started = time.monotonic()
    try:
        async with asyncio.timeout(15):
            async with connect(f"ws://127.0.0.1:{port}/twilio/{TOKEN}", open_timeout=15) as ws:
                await ws.send(_start_message())
                return round(time.monotonic() - started, 3)
    except Exception:
        return None


async def slow_handshakes(src: Path, connections: int = 1500, probes: int = 10) -> dict[str, Any]:
    async def idle(send: Any) -> None:
        await asyncio.Event().wait()

    provider = HostileProvider(idle)
    counts = {"opened": 0, "connect_failed": 0}
    async with provider.serving() as url:
        proc, port, admin = await _serve(src, url, fd_limit=1024)
        stop = asyncio.Event()
        slots = [
            asyncio.create_task(_slow_slot(port, f"127.0.{3 + k // 25}.{1 + k % 25}", stop, counts))
            for k in range(connections)
        ]
        livez: list[int | None] = []
        healthz: list[int | None] = []
        handshakes: list[float | None] = []
        try:
            await asyncio.sleep(5.0)  # the flood is at full strength
            for k in range(probes):
                livez.append(await _http_status(admin, "/livez", f"127.0.200.{k + 1}"))
                healthz.append(await _http_status(port, "/healthz", f"127.0.201.{k + 1}"))
                handshakes.append(await _legit_handshake(port))
                await asyncio.sleep(0.5)
        finally:
            stop.set()
            await asyncio.gather(*slots, return_exceptions=True)
            await _stop(proc)
    done = [h for h in handshakes if h is not None]
    return {
        "slow_slots": connections,
        "fd_limit": 1024,
        "attacker_connections_opened": counts["opened"],
        "attacker_connects_failed": counts["connect_failed"],
        "admin_livez_ok": f"{livez.count(200)}/{probes}",
        "healthz_ok": f"{healthz.count(200)}/{probes}",
        "legit_handshakes_ok": f"{len(done)}/{probes}",
        "legit_handshake_s_max": max(done) if done else None,
        "legit_handshake_s_median": sorted(done)[len(done) // 2] if done else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "attack",
        choices=[
            "transcript",
            "agent-text",
            "huge-audio",
            "empty-items",
            "gemini-empty-items",
            "openai-empty-responses",
            "audio-flood",
            "slow-handshakes",
        ],
    )
    parser.add_argument("--src", type=Path, default=REPO / "src")
    parser.add_argument("--label", default="current")
    parser.add_argument(
        "--deltas",
        type=int,
        default=4000,
        help="transcript deltas of 200 chars; items (responses) for the empty-* attacks",
    )
    parser.add_argument(
        "--pace-ms",
        type=float,
        default=0.0,
        help="gemini-empty-items: wait this long before each model turn (each one settles "
        "and is judged at a heard checkpoint: the re-seed storm); openai-empty-responses: "
        "after each response",
    )
    args = parser.parse_args(argv)
    if args.attack in ("transcript", "agent-text", "huge-audio"):
        result = asyncio.run(provider_flood(args.src, args.attack, args.deltas))
    elif args.attack in ("empty-items", "gemini-empty-items", "openai-empty-responses"):
        caller_s = 45.0
        if args.attack == "openai-empty-responses":  # the paced flood fits in the call
            caller_s = max(caller_s, args.deltas * args.pace_ms / 1000 + 10)
        result = asyncio.run(
            empty_items_flood(
                args.src, args.attack, args.deltas, caller_s=caller_s, pace_ms=args.pace_ms
            )
        )
    elif args.attack == "audio-flood":
        result = asyncio.run(audio_flood(args.src))
    else:
        result = asyncio.run(slow_handshakes(args.src))
    result = {"attack": args.attack, "label": args.label, **result}
    log(json.dumps(result))
    path = REPO / "bench" / "results" / "attacks.json"
    runs = json.loads(path.read_text())["runs"] if path.exists() else []
    write_json("attacks", {"runs": [*runs, result]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
