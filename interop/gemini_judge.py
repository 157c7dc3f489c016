"""The sim as judge of a Gemini Live client (make interop): heard vs what the server holds.

Gemini Live has no truncate: after a barge-in the server keeps the model turn it generated
(flagged ``interrupted``), so what the model remembers of the cut answer is the audio the sim
had generated, whatever the caller heard. The sim's event log has every message it sent with
its time, so the judge estimates what a real-time player had heard when the caller spoke
(``serverContent.interrupted``) exactly as for OpenAI clients.
"""

from __future__ import annotations

from typing import Any, Protocol


class VerdictLike(Protocol):
    spoken_turn: bool
    tool_call: bool
    follow_up: bool
    barge_in: bool
    server_cancelled: bool
    heard_ms: list[float]
    remembered_ms: list[float]


def _content(record: dict[str, Any]) -> dict[str, Any]:
    event = record.get("event")
    return (event or {}).get("serverContent") or {} if isinstance(event, dict) else {}


def _heard(out: list[dict[str, Any]], question: str) -> float | None:
    """Ms of the cut answer a real-time player had played when the caller barged in."""
    asked = next(
        (
            r["t"]
            for r in out
            if (_content(r).get("inputTranscription") or {}).get("text") == question
        ),
        None,
    )
    if asked is None:
        return None
    chunks: list[tuple[float, int]] = []
    for record in out:
        if record["t"] < asked:
            continue
        content = _content(record)
        if content.get("interrupted"):
            if not chunks:
                return None
            played_ms = (record["t"] - chunks[0][0]) * 1000.0
            return round(min(played_ms, sum(n for _, n in chunks) / 48.0))
        for part in (content.get("modelTurn") or {}).get("parts", []):
            data = (part.get("inlineData") or {}).get("data")
            if isinstance(data, int):
                chunks.append((record["t"], data))
    return None


def judge(
    verdict: VerdictLike,
    history: list[dict[str, Any]],
    log: list[dict[str, Any]],
    cut_question: str,
) -> None:
    """Fill ``verdict`` from the Gemini server's history and the sim's log."""
    parts = [p for turn in history for p in turn["parts"]]
    verdict.spoken_turn = any(t["role"] == "user" and t["source"] == "realtime" for t in history)
    calls = {p["id"] for p in parts if p["kind"] == "function_call"}
    answered = [p for p in parts if p["kind"] == "function_response" and p["id"] in calls]
    verdict.tool_call = bool(answered)
    after_tool = False
    for turn in history:
        if turn["source"] == "tool_response":
            after_tool = True
        elif after_tool and turn["role"] == "model":
            verdict.follow_up = not turn["interrupted"]
            break
    cut = next((t for t in history if t["role"] == "model" and t["interrupted"]), None)
    out = [r for r in log if r["dir"] == "out"]
    heard = _heard(out, cut_question)
    verdict.barge_in = cut is not None and heard is not None
    verdict.server_cancelled = cut is not None
    if cut is None or heard is None:
        return
    verdict.heard_ms = [heard]
    audio = sum(p.get("audio_ms", 0.0) for p in cut["parts"] if p["kind"] == "audio")
    verdict.remembered_ms = [round(audio)]
