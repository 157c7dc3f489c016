"""The per-response facts both metric back ends count (pure functions of `TurnMetrics`).

One owner for each fact: the OpenTelemetry instruments and the Prometheus collectors record
what these functions return, and the response span reports the same latency, so a dashboard,
a trace and the call's `history.json` can never disagree about what a turn was.
"""

from __future__ import annotations

from dataclasses import dataclass

from vocalis.runtime.events import TurnMetrics

__all__ = ["ResponseFacts", "response_facts", "turn_latency_s"]


def turn_latency_s(metrics: TurnMetrics) -> float | None:
    """End of the caller's speech to the first agent frame played (None: not a caller turn,
    or nothing played)."""
    end, played = metrics.user_speech_end_at, metrics.first_audio_played_at
    if end is None or played is None:
        return None
    return max(0.0, played - end)


@dataclass(frozen=True, slots=True)
class ResponseFacts:
    origin: str
    turn_latency_s: float | None
    # Messages cut to what was heard on the provider (a truncate was sent).
    truncations: int
    # Messages generated but never played, deleted from the provider's history.
    never_played_deletions: int


def response_facts(metrics: TurnMetrics) -> ResponseFacts:
    return ResponseFacts(
        origin=metrics.origin,
        turn_latency_s=turn_latency_s(metrics),
        truncations=sum(1 for m in metrics.messages if m.history_op == "truncate"),
        never_played_deletions=sum(
            1 for m in metrics.messages if m.history_op == "delete" and m.playout == "skipped"
        ),
    )
