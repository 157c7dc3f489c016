"""JSONL event log of the simulator, and the audio-free event summaries tests assert on.

Every event both ways is written as one line ``{"t", "session", "dir", "event"}`` with ``dir``
``"in"`` (client -> server) or ``"out"``; audio payloads are replaced by their decoded byte
count (an ``int`` in place of the base64 string), so logs stay small and readable. Lines with
``dir: "note"`` explain simulator decisions (which script answered, which fault fired), and
``dir: "state"`` holds the final server-side conversation when a connection ends.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import IO, Any

# (event type, field holding base64 audio)
_AUDIO_FIELDS = {
    "input_audio_buffer.append": "audio",
    "response.output_audio.delta": "delta",
}
_ITEM_EVENTS = ("conversation.item.create", "conversation.item.retrieved")


def b64_len(data: str) -> int:
    """Decoded length of a base64 string without decoding it."""
    n = len(data)
    if n == 0:
        return 0
    padding = (data[-1] == "=") + (n > 1 and data[-2] == "=")
    return n * 3 // 4 - padding


def summarize(event: dict[str, Any]) -> dict[str, Any]:
    """A shallow copy of ``event`` with audio payloads replaced by byte counts."""
    event_type = event.get("type")
    field = _AUDIO_FIELDS.get(event_type) if isinstance(event_type, str) else None
    if field is not None:
        value = event.get(field)
        if isinstance(value, str):
            summary = dict(event)
            summary[field] = b64_len(value)
            return summary
        return event
    if event_type in _ITEM_EVENTS:
        item = event.get("item")
        if isinstance(item, dict) and isinstance(item.get("content"), list):
            content = [
                {**part, "audio": b64_len(part["audio"])}
                if isinstance(part, dict) and isinstance(part.get("audio"), str)
                else part
                for part in item["content"]
            ]
            return {**event, "item": {**item, "content": content}}
    return event


class EventLog:
    """Append-only JSONL writer shared by all sessions of a server (thread-safe)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = self.path.open("a", encoding="utf-8", buffering=1 << 16)
        self._lock = threading.Lock()
        self._t0 = time.monotonic()

    def write(self, session: str, direction: str, payload: Any) -> None:
        key = "event" if direction in ("in", "out") else direction
        line = json.dumps(
            {
                "t": round(time.monotonic() - self._t0, 4),
                "session": session,
                "dir": direction,
                key: payload,
            },
            separators=(",", ":"),
            default=str,
        )
        with self._lock:
            if self._file is not None:
                self._file.write(line + "\n")

    def flush(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """All records of a JSONL log (for tests and tools)."""
    with Path(path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
