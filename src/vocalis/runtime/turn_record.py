"""`TurnRecord`: the call report's per-turn metrics, bounded — recent turns whole, all summed.

Why it exists: the saved history (`AgentSession.history_json()["metrics"]`) kept a
`SavedTurn` for every response of the call, so every settled response left ~0.5 KB behind
until the call ended, and the provider decides how many responses there are. The record
keeps the most recent `CallBudget.max_kept_turns` turns in full (what a report or a check
reads: latencies and each message's verdict and generated text) and exact aggregates over
every turn (counts, and count / sum / min / max of each latency), so a long call's report
still says how the whole call went while its memory stays fixed. Sans-I/O: no clock, no
asyncio.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from vocalis.runtime.events import SavedTurn

__all__ = ["LatencySum", "TurnRecord"]


@dataclass(slots=True)
class LatencySum:
    """Exact count, sum, minimum and maximum of one latency over every turn that had it."""

    count: int = 0
    total_ms: float = 0.0
    min_ms: float = math.inf
    max_ms: float = -math.inf

    def add(self, value: float | None) -> None:
        if value is None:
            return
        self.count += 1
        self.total_ms += value
        self.min_ms = min(self.min_ms, value)
        self.max_ms = max(self.max_ms, value)

    def to_json(self) -> dict[str, Any]:
        if not self.count:
            return {"count": 0}
        return {
            "count": self.count,
            "mean_ms": round(self.total_ms / self.count, 1),
            "min_ms": round(self.min_ms, 1),
            "max_ms": round(self.max_ms, 1),
        }


@dataclass(slots=True)
class TurnRecord:
    """The most recent `keep` turns in full, and aggregates over all of them."""

    keep: int
    recent: deque[SavedTurn] = field(init=False)
    turns: int = 0
    interrupted: int = 0
    messages: int = 0
    # Messages the caller heard nothing of (no audio played, not shown as text).
    never_played: int = 0
    voice_to_voice: LatencySum = field(default_factory=LatencySum)
    time_to_first_audio: LatencySum = field(default_factory=LatencySum)
    playback_latency: LatencySum = field(default_factory=LatencySum)

    def __post_init__(self) -> None:
        if self.keep <= 0:
            raise ValueError("TurnRecord.keep must be positive")
        self.recent = deque(maxlen=self.keep)

    def add(self, turn: SavedTurn) -> None:
        self.recent.append(turn)
        self.turns += 1
        self.interrupted += turn.interrupted
        self.messages += len(turn.messages)
        self.never_played += sum(
            1 for m in turn.messages if not m.played_ms and m.playout != "full"
        )
        self.voice_to_voice.add(turn.voice_to_voice_ms)
        self.time_to_first_audio.add(turn.time_to_first_audio_ms)
        self.playback_latency.add(turn.playback_latency_ms)

    @property
    def dropped(self) -> int:
        """Turns summed in the aggregates but no longer kept in full."""
        return self.turns - len(self.recent)

    def recent_json(self) -> list[dict[str, Any]]:
        return [turn.to_json() for turn in self.recent]

    def summary_json(self) -> dict[str, Any]:
        return {
            "turns": self.turns,
            "turns_kept": len(self.recent),
            "interrupted": self.interrupted,
            "messages": self.messages,
            "never_played": self.never_played,
            "voice_to_voice_ms": self.voice_to_voice.to_json(),
            "time_to_first_audio_ms": self.time_to_first_audio.to_json(),
            "playback_latency_ms": self.playback_latency.to_json(),
        }
