"""What the protocol core asks its driver to do, besides sending events.

The core (:mod:`vocalis.sim.protocol`) is synchronous and owns no task, timer or socket; each
call returns a list of outputs: server event dicts to send, and these commands, which the
asyncio driver (:mod:`vocalis.sim.session`) carries out — stream a response with pacing and its
faults, stop one, arm or disarm the idle timer, close the connection, log a decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vocalis.sim.responses import ResponseRun
from vocalis.sim.scenario import FaultSpec


@dataclass(frozen=True, slots=True)
class StartResponse:
    """Stream ``run`` (it is already the session's response in flight), firing ``faults``."""

    run: ResponseRun
    faults: tuple[FaultSpec, ...]


@dataclass(frozen=True, slots=True)
class StopResponse:
    """The response ended early (cancel, failure): stop streaming it."""

    response_id: str


@dataclass(frozen=True, slots=True)
class ArmIdle:
    """Call :meth:`ProtocolCore.idle_timeout` after ``delay_s`` unless disarmed first."""

    delay_s: float


@dataclass(frozen=True, slots=True)
class DisarmIdle:
    """Forget a pending idle timeout (speech started, a new response)."""


@dataclass(frozen=True, slots=True)
class CloseSocket:
    """Send a close frame with ``code`` and ``reason``; nothing is sent after it."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Note:
    """A simulator decision worth recording (which script answered, a barge-in)."""

    text: str


Command = StartResponse | StopResponse | ArmIdle | DisarmIdle | CloseSocket | Note
Output = dict[str, Any] | Command
"""A server event (a dict without ``event_id``) or a command."""
