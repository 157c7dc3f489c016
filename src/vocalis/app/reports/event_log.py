"""The recorded event log of one call, bounded by `CallBudget.max_event_log_bytes`.

Why it exists: `events.jsonl` records every session event, and a peer decides how many there
are (a provider can stream caller-transcript deltas forever, each event carrying the whole
text so far: 0.8 MB of provider traffic once made 298 MB of records). The log keeps the first
half of its byte budget as it came (how the call started), then a ring of the most recent
events in the other half (how it ended), and one `events_dropped` record between them that
says how many events of which type were left out. Long strings inside a record are cut to
`max_string_chars`, so no single record can eat the budget. Sizes are estimated from string
lengths (no JSON encoding per event).
"""

from __future__ import annotations

import json
import logging
from collections import Counter, deque
from typing import Any

__all__ = ["BoundedEventLog"]

log = logging.getLogger("vocalis.app.events")

_OVERHEAD = 16  # per key/value and per record: punctuation, numbers, booleans


def _clip(value: Any, limit: int) -> tuple[Any, int]:
    """(value with long strings cut, its approximate JSON size)."""
    if isinstance(value, str):
        if len(value) > limit:
            value = value[:limit] + f"…[+{len(value) - limit} chars]"
        if value.isprintable() and '"' not in value and "\\" not in value:
            return value, len(value) + 2
        return value, len(json.dumps(value, ensure_ascii=False))  # escapes count too
    if isinstance(value, dict):
        size = _OVERHEAD
        out: dict[str, Any] = {}
        for key, item in value.items():
            out[key], item_size = _clip(item, limit)
            size += len(str(key)) + item_size + 4
        return out, size
    if isinstance(value, (list, tuple)):
        items = [_clip(item, limit) for item in value]
        return [v for v, _ in items], _OVERHEAD + sum(s + 1 for _, s in items)
    return value, _OVERHEAD


class BoundedEventLog:
    """Head (first half of the budget) + gap summary + tail ring (most recent half)."""

    def __init__(self, max_bytes: int, *, max_string_chars: int = 16_000) -> None:
        if max_bytes < 1024:
            raise ValueError("max_bytes must be at least 1024")
        self.max_bytes = max_bytes
        self.max_string_chars = max_string_chars
        self._head: list[dict[str, Any]] = []
        self._head_bytes = 0
        self._tail: deque[tuple[dict[str, Any], int]] = deque()
        self._tail_bytes = 0
        self._dropped: Counter[str] = Counter()
        self._first_dropped_t: float | None = None
        self._last_dropped_t: float | None = None

    @property
    def bytes(self) -> int:
        """Approximate JSON size of what is kept."""
        return self._head_bytes + self._tail_bytes

    @property
    def dropped(self) -> int:
        return sum(self._dropped.values())

    def append(self, record: dict[str, Any]) -> None:
        record, size = _clip(record, self.max_string_chars)
        half = self.max_bytes // 2
        if not self._tail and self._head_bytes + size <= half:
            self._head.append(record)
            self._head_bytes += size
            return
        self._tail.append((record, size))
        self._tail_bytes += size
        while self._tail_bytes > half and self._tail:
            old, old_size = self._tail.popleft()
            self._tail_bytes -= old_size
            self._note_dropped(old)

    def _note_dropped(self, record: dict[str, Any]) -> None:
        if not self._dropped:
            log.warning(
                "event log over its %d-byte budget: keeping the first and the most recent "
                "events, summarizing the rest",
                self.max_bytes,
            )
        self._dropped[str(record.get("type"))] += 1
        t = record.get("t")
        if isinstance(t, (int, float)):
            if self._first_dropped_t is None:
                self._first_dropped_t = float(t)
            self._last_dropped_t = float(t)

    def records(self) -> list[dict[str, Any]]:
        """What is kept, in order, with the `events_dropped` summary where the gap is."""
        out = list(self._head)
        if self._dropped:
            out.append(
                {
                    "t": self._first_dropped_t,
                    "type": "events_dropped",
                    "count": self.dropped,
                    "by_type": dict(self._dropped.most_common()),
                    "until_t": self._last_dropped_t,
                    "reason": f"event log over its {self.max_bytes}-byte budget",
                }
            )
        out.extend(record for record, _ in self._tail)
        return out

    def __len__(self) -> int:
        return len(self._head) + len(self._tail)
