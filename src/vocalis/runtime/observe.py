"""A public, read-only view of a running session, for tests, dashboards and debugging.

Why: code that needs to know whether a session is busy (a test waiting for a turn to
settle, a worker draining calls) used to read the session's private fields, which broke
whenever the runtime changed shape. `AgentSession.snapshot()` answers with plain values that
stay stable.
"""

from __future__ import annotations

from dataclasses import dataclass

from vocalis.runtime.events import AgentState, InterruptSource, UserState
from vocalis.runtime.response_phase import ResponsePhase, StopReason
from vocalis.runtime.speech import SpeechKind


@dataclass(frozen=True, slots=True)
class ResponseView:
    """One response in flight."""

    response_id: str
    kind: SpeechKind
    phase: ResponsePhase
    stop: StopReason | None
    interrupt_source: InterruptSource | None


@dataclass(frozen=True, slots=True)
class SessionSnapshot:
    """What the session is doing right now."""

    agent_state: AgentState
    user_state: UserState
    # Responses started and not yet settled, in start order.
    responses: tuple[ResponseView, ...]
    # Reply requests waiting for their turn, and whether one is being requested right now.
    queued_replies: int
    requesting: bool
    # A history re-sync is due or running (replies wait for it).
    resync_pending: bool
    # Caller speech over the agent whose fate (interruption or backchannel) is undecided.
    interruption_pending: bool
    # Backchannels so far ("mhm" over the agent), and how many paused and resumed playback.
    false_interruptions: int
    resumed_after_false_interruption: int

    @property
    def idle(self) -> bool:
        """Nothing runs, nothing is queued or being requested, no re-sync is due."""
        return not (self.responses or self.queued_replies or self.requesting or self.resync_pending)
