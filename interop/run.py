"""`make interop`: third-party agent frameworks against `vocalis sim-server`, judged by the sim.

Each client (LiveKit Agents and Pipecat, each with its OpenAI realtime and its Gemini Live
service; the Gemini ones against the Gemini dialect over TLS) runs in its framework's own
virtualenv with pinned versions (interop/requirements-*.txt, made under
``~/.cache/vocalis/interop`` by the Makefile), as a subprocess talking to a SimServer started
here, at pace 1 and pace 4. One scripted call covers a spoken turn, a multi-message response
with a tool call (preamble + call, then the answer after the tool output) and a barge-in during
a two-message answer. The sim is the judge: it knows what it sent and when, so it estimates
what a real-time player had *heard* at the barge-in and compares it with what the client made
the server *remember* (its truncate / delete of the cut items).

    python interop/run.py [--clients livekit,pipecat,livekit-gemini,pipecat-gemini]
                          [--paces 1,4] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import wave
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gemini_judge

from vocalis.audio.espeak import synthesize
from vocalis.sim.gemini import DIALECT, sessions_of
from vocalis.sim.log import read_log
from vocalis.sim.server import SimServer
from vocalis.sim.session import SimSession
from vocalis.sim.tls import ensure_local_certificate

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("VOCALIS_INTEROP_CACHE", Path.home() / ".cache/vocalis/interop"))
OUT = HERE.parent / "out" / "interop"
TOLERANCE_MS = 300.0  # client playout buffering and the speech-start latency
QUESTIONS = (
    "What is the weather in Paris today?",
    "What about the weekend, should I plan a picnic?",
    "Sorry, just tell me about Sunday.",
)
SCENARIO: dict[str, Any] = {
    "name": "interop",
    "responses": [
        {
            "user_transcript": QUESTIONS[0],
            "items": [
                {"say": "Let me check the weather in Paris for you."},
                {"call": "get_weather", "arguments": {"city": "Paris"}},
            ],
        },
        {"say": "It is sunny in Paris right now, twenty two degrees."},
        {
            "user_transcript": QUESTIONS[1],
            "items": [
                {"say": "The weekend looks mixed, so let me take it day by day."},
                {"say": "Saturday starts cloudy with a chance of rain in the afternoon."},
            ],
        },
        {"user_transcript": QUESTIONS[2], "say": "Sunday will be sunny and warm."},
    ],
}


@dataclass
class Verdict:
    client: str
    pace: float
    ran: bool = False
    spoken_turn: bool = False
    tool_call: bool = False
    follow_up: bool = False
    barge_in: bool = False
    server_cancelled: bool = False
    heard_ms: list[float] = field(default_factory=list)
    remembered_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def truncation_right(self) -> bool:
        pairs = zip(self.heard_ms, self.remembered_ms, strict=True)
        return bool(self.heard_ms) and all(abs(h - r) <= TOLERANCE_MS for h, r in pairs)


def _caller_lines(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index, text in enumerate(QUESTIONS, start=1):
        clip = synthesize(text, voice="en-us+m3", sample_rate=24000)
        with wave.open(str(folder / f"line{index}.wav"), "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(24000)
            wav.writeframes(clip.samples.tobytes())
    return folder


def _responses(session: SimSession) -> list[dict[str, Any]]:
    return [e["response"] for e in session.server_events if e["type"] == "response.done"]


def _heard(log: list[dict[str, Any]], session: SimSession, cut: dict[str, Any]) -> list[float]:
    """Per message of the cut response: ms a real-time player had played at the barge-in.

    The player starts with the response's first audio delta and plays without gaps; the
    barge-in is the first ``speech_started`` after that. Empty when the caller spoke only
    after the whole answer had played (no barge-in happened).
    """
    out = [r for r in log if r["dir"] == "out" and r["session"] == session.id]
    deltas = [
        r
        for r in out
        if r["event"]["type"] == "response.output_audio.delta"
        and r["event"]["response_id"] == cut["id"]
    ]
    if not deltas:
        return []
    start = deltas[0]["t"]
    barge = next(
        (
            r["t"]
            for r in out
            if r["event"]["type"] == "input_audio_buffer.speech_started" and r["t"] >= start
        ),
        None,
    )
    total_ms = sum(r["event"]["delta"] for r in deltas) / 48.0
    if barge is None or (barge - start) * 1000.0 >= total_ms:
        return []
    played_ms = (barge - start) * 1000.0
    sent: dict[str, float] = {}
    for r in deltas:
        item = r["event"]["item_id"]
        sent[item] = sent.get(item, 0.0) + r["event"]["delta"] / 48.0
    heard = []
    for item in [i["id"] for i in cut["output"] if i["type"] == "message"]:
        take = min(played_ms, sent.get(item, 0.0))
        heard.append(round(take))
        played_ms -= take
    return heard


def judge(verdict: Verdict, session: SimSession, log: list[dict[str, Any]]) -> None:
    responses = _responses(session)
    types = session.server_types()
    verdict.errors = [
        str(e["error"].get("code")) for e in session.server_events if e["type"] == "error"
    ]
    verdict.spoken_turn = "input_audio_buffer.committed" in types and bool(responses)
    first = responses[0] if responses else {}
    calls = [i for i in first.get("output", []) if i["type"] == "function_call"]
    outputs = [
        e["item"]
        for e in session.client_events
        if e["type"] == "conversation.item.create"
        and (e.get("item") or {}).get("type") == "function_call_output"
    ]
    verdict.tool_call = bool(calls) and any(
        o.get("call_id") == calls[0]["call_id"] for o in outputs
    )
    verdict.follow_up = len(responses) >= 2 and responses[1]["status"] == "completed"
    # The long two-message answer (scripted response 3) is the one the caller cuts; at fast
    # pace the server may have finished it before the caller spoke, the client still playing.
    cut = responses[2] if len(responses) > 2 else None
    if cut is None:
        return
    verdict.server_cancelled = cut["status"] == "cancelled"
    verdict.heard_ms = _heard(log, session, cut)
    verdict.barge_in = bool(verdict.heard_ms)
    for item in [i for i in cut["output"] if i["type"] == "message"]:
        kept = session.conversation.get(item["id"])
        verdict.remembered_ms.append(round(kept.audio_ms) if kept is not None else 0.0)


@dataclass(frozen=True)
class ClientSpec:
    """A client: its virtualenv, its driver script and the protocol it speaks."""

    venv: str
    script: str
    protocol: str = "openai"  # or "gemini": sim-server --protocol gemini --tls


CLIENTS = {
    "livekit": ClientSpec("livekit", "livekit_client.py"),
    "pipecat": ClientSpec("pipecat", "pipecat_client.py"),
    "livekit-gemini": ClientSpec("livekit", "livekit_client.py", "gemini"),
    "pipecat-gemini": ClientSpec("pipecat", "pipecat_client.py", "gemini"),
}


def _server(spec: ClientSpec, pace: float, log_path: Path) -> tuple[SimServer, list[str]]:
    """The sim for a client, and the arguments that point the client at it."""
    if spec.protocol == "gemini":
        cert = ensure_local_certificate(OUT / "tls")
        server = SimServer(
            scenario=SCENARIO, pace=pace, log_path=log_path, tls=cert, dialects=[DIALECT]
        )
        return server, [str(cert.cert_path)]
    return SimServer(scenario=SCENARIO, pace=pace, log_path=log_path), []


async def run_one(client: str, pace: float, caller: Path) -> Verdict:
    verdict = Verdict(client, pace)
    spec = CLIENTS[client]
    python = CACHE / spec.venv / "bin" / "python"
    if not python.exists():
        verdict.note = f"no virtualenv at {python.parent.parent} (run make interop)"
        return verdict
    name = f"{client}-pace{pace:g}"
    log_path = OUT / f"{name}.jsonl"
    log_path.unlink(missing_ok=True)
    server, extra = _server(spec, pace, log_path)
    async with server:
        base = server.base_url if spec.protocol == "gemini" else server.base_url + "/v1"
        proc = await asyncio.create_subprocess_exec(
            str(python),
            str(HERE / spec.script),
            base,
            str(caller),
            *extra,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(proc.communicate(), 180)
        (OUT / f"{name}.out").write_bytes(output)
        verdict.ran = proc.returncode == 0
        if not verdict.ran:
            verdict.note = f"client exited {proc.returncode} (see out/interop/{name}.out)"
        gemini = sessions_of(server).sessions if spec.protocol == "gemini" else []
        sessions = list(server.sessions)
        await server.stop()
        if gemini:
            history = gemini[-1].history.summary()
            gemini_judge.judge(verdict, history, read_log(log_path), QUESTIONS[1])
        elif sessions:
            judge(verdict, sessions[-1], read_log(log_path))
    return verdict


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def table(verdicts: list[Verdict]) -> str:
    head = (
        "client",
        "pace",
        "ran",
        "spoken turn",
        "tool call",
        "reply after tool",
        "barge-in",
        "server cancelled",
        "heard ms",
        "remembered ms",
        "heard = remembered",
        "sim errors",
    )
    rows = [head]
    for v in verdicts:
        rows.append(
            (
                v.client,
                f"{v.pace:g}",
                _yes(v.ran),
                _yes(v.spoken_turn),
                _yes(v.tool_call),
                _yes(v.follow_up),
                _yes(v.barge_in),
                _yes(v.server_cancelled),
                "+".join(f"{x:g}" for x in v.heard_ms) or "-",
                "+".join(f"{x:g}" for x in v.remembered_ms) or "-",
                _yes(v.truncation_right),
                ",".join(v.errors) or "none",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    notes = [f"  {v.client} pace {v.pace:g}: {v.note}" for v in verdicts if v.note]
    return "\n".join(lines + notes)


async def main() -> int:
    parser = argparse.ArgumentParser(description="third-party clients against the sim")
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--paces", default="1,4")
    parser.add_argument("--json", type=Path, default=OUT / "interop.json")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    caller = _caller_lines(OUT / "caller")
    verdicts = [
        await run_one(client, float(pace), caller)
        for client in args.clients.split(",")
        for pace in args.paces.split(",")
    ]
    print(table(verdicts))
    args.json.write_text(json.dumps([asdict(v) for v in verdicts], indent=2))
    return 0 if all(v.ran for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
