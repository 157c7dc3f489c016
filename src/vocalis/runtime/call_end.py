"""`CallEnd`: why a session ended, decided once and owned by the session.

Why it exists: the end reason used to be a string the session overwrote as close paths raced
(a fatal error, then the provider's own close notice), and tools read the ending error back
from the event log — which is bounded (`CallBudget.max_event_log_bytes`, the session's own
`event_log_bytes`): a hostile peer that keeps the call busy after the error pushes it out, and
the reason was lost. The first cause recorded wins; `AgentSession.end` exposes it, and the
last event (`SessionClosedEvent`, always kept by a bounded log) carries it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["CallEnd", "EndCause"]


class EndCause(enum.Enum):
    """Who ended the session."""

    # The application closed it (`AgentSession.aclose()`: a hang-up, a deadline, shutdown).
    CLOSED = "closed"
    # The provider's session ended without an error (it closed, or reconnecting gave up).
    PROVIDER_CLOSED = "provider closed"
    # A fatal error ended it: a provider's (`quota`, `item_budget`, ...) or a bound the
    # runtime holds (`response_budget`); `CallEnd.code` says which.
    FATAL_ERROR = "fatal provider error"


@dataclass(frozen=True, slots=True)
class CallEnd:
    """Why one session ended: its cause, and for a fatal error its code and message."""

    cause: EndCause
    # The error code (`FATAL_ERROR`) or the provider's close reason (`PROVIDER_CLOSED`).
    code: str | None = None
    message: str | None = None

    @property
    def failed(self) -> bool:
        """A fatal error ended the call (commands exit non-zero on it)."""
        return self.cause is EndCause.FATAL_ERROR

    def __str__(self) -> str:
        """The reason as one phrase: `closed`, `provider closed`, `fatal provider error: X`."""
        if self.cause is EndCause.FATAL_ERROR:
            return f"{self.cause.value}: {self.code or 'unknown'}"
        if self.cause is EndCause.PROVIDER_CLOSED and self.code:
            return f"{self.cause.value}: {self.code}"
        phrase: str = self.cause.value
        return phrase
