"""`CallBudget`: what one call may make this process hold, whatever its peers send.

Why it exists: a worker runs many calls in one process, so one call that grows without bound
(a provider streaming transcript deltas forever, a caller flooding audio, a client that never
acknowledges playback) takes every other call down with it. Each resource a peer can make a
call accumulate has one bound here, with a default sized for real conversations; past a bound
the call degrades with one logged reason (text stops growing, old events are summarized, audio
ahead of playback is dropped) — it never grows. docs/reliability.md lists the bounds and how to
size them. This is the runtime/app/transport half; what the provider client keeps of each
item (text and audio per item and per call, delta size) is its other half,
`vocalis.providers.limits.ProviderLimits`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["DEFAULT_BUDGET", "CallBudget"]


@dataclass(frozen=True, slots=True)
class CallBudget:
    """Per-call resource bounds (all positive)."""

    # The recorded event log (events.jsonl): the first half and the most recent half are kept.
    max_event_log_bytes: int = 4 * 1_048_576
    # Agent audio a sink holds or has sent ahead of what the caller has heard.
    max_audio_ahead_s: float = 120.0
    # Provider responses started and not yet settled (playing, queued or settling). A real
    # provider answers one turn at a time (a barge-in leaves one or two settling); a peer that
    # starts responses faster than they play made the call hold every one of them — its run,
    # tasks and streams, ~25 KB each (5,000 Gemini turns: +130 MB). Past it the call ends.
    max_open_responses: int = 32
    # Settled responses whose metrics the call report keeps in full (`history_json()`'s
    # "metrics"; every turn is still counted in "metrics_summary"). One SavedTurn is ~0.5 KB
    # and a provider decides how many responses there are; a 10-minute call has ~170.
    max_kept_turns: int = 500

    def __post_init__(self) -> None:
        for f in fields(self):
            if not getattr(self, f.name) > 0:
                raise ValueError(f"CallBudget.{f.name} must be positive")


DEFAULT_BUDGET = CallBudget()
