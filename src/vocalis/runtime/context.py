"""What a tool (and a per-call agent factory) may know and do about the call it runs in.

Why: a tool that can only compute a value cannot end the call after a goodbye, hand the caller
to a specialist, or look up the caller's account. `ToolContext` is passed to any tool that
declares a parameter of that type (it is never shown to the model): it carries the session,
the call's `CallInfo` and the actions a voice agent needs — `say`, `hang_up`, `transfer` where
the transport supports it, and `handoff` to another `Agent`.

`CallInfo` is what the transport knows about the call (Twilio's custom parameters and call
sid, the playground page's `?meta.*` values); the CLI passes it to per-call agent factories
(`AGENT_REF` naming `def make_agent(call: CallInfo) -> Agent`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from vocalis.conversation.items import MessageItem
from vocalis.runtime.events import AgentStateChanged, ConversationItemAdded, ToolCallFinished
from vocalis.transports.base import CallInfo

if TYPE_CHECKING:
    from vocalis.runtime.agent import Agent
    from vocalis.runtime.session import AgentSession
    from vocalis.runtime.speech import SpeechHandle

__all__ = ["CallInfo", "ToolContext", "Transferable", "answered", "wait_until"]

log = logging.getLogger(__name__)


@runtime_checkable
class Transferable(Protocol):
    """A transport that can pass the call to another number or address (e.g. a SIP trunk)."""

    async def transfer(self, to: str) -> None: ...


# Tasks started by `hang_up()`: held here so they are not garbage-collected mid-wait.
_PENDING: set[asyncio.Task[None]] = set()


class ToolContext:
    """The call a tool runs in; declare `ctx: ToolContext` in an async tool to receive it."""

    def __init__(self, session: AgentSession, *, call_id: str, tool_name: str) -> None:
        self.session = session
        self.call_id = call_id
        self.tool_name = tool_name

    @property
    def call(self) -> CallInfo:
        return self.session.transport.call_info

    def say(self, text: str, *, allow_interruptions: bool = True) -> SpeechHandle:
        """Speak now (queued behind the current response), e.g. "one moment, checking"."""
        return self.session.say(text, allow_interruptions=allow_interruptions)

    def hang_up(self) -> None:
        """End the call once the agent has finished speaking (this tool's follow-up included).

        Returns at once: the tool's result still goes to the model, which can say goodbye.
        """
        known = {item.id for item in self.session.history}
        task = asyncio.get_running_loop().create_task(
            _hang_up_when_done(self.session, known), name="vocalis-hang-up"
        )
        _PENDING.add(task)
        task.add_done_callback(_PENDING.discard)

    async def transfer(self, to: str) -> None:
        """Pass the call to `to`; raises `ToolError` (the model is told) where unsupported."""
        from vocalis.runtime.tools import ToolError

        transport = self.session.transport
        if not isinstance(transport, Transferable):
            raise ToolError(f"this call ({self.call.transport}) cannot be transferred")
        await transport.transfer(to)

    async def handoff(self, agent: Agent) -> None:
        """Switch to `agent` (its instructions and tools) for the rest of the call, then run
        its `on_enter`. The conversation carries over; the model's answer to this tool's
        result already comes from the new agent."""
        log.info("hand-off from %s to %s", self.session.agent, agent)
        await self.session.update_agent(agent)
        if agent.on_enter is not None:
            result = agent.on_enter(self.session)
            if asyncio.iscoroutine(result):
                await result


def answered(session: AgentSession, known: Collection[str] = ()) -> bool:
    """The agent is done: listening, no tool running, and the conversation ends with an
    assistant message that is not in `known` (the item ids that existed before the wait).

    The state alone is not enough: right after the caller's message is sent the agent is
    still `listening` (its reply is not queued yet), and a follow-up the caller's new turn
    replaced leaves a tool's output last; the last item (a call, its output, or an older
    message) says whether the answer came.
    """
    history = session.history
    last = history[-1] if history else None
    return (
        isinstance(last, MessageItem)
        and last.role == "assistant"
        and last.id not in known
        and session.agent_state in ("listening", "closed")
        and all(run.future.done() for run in session.tool_runs)
    )


async def wait_until(
    session: AgentSession, predicate: Callable[[], bool], timeout_s: float | None = None
) -> None:
    """Wait (no polling) until `predicate()` holds; re-checked on every state change, new
    history item and finished tool. Raises `TimeoutError` after `timeout_s`."""
    changed = asyncio.Event()
    offs = [
        session.on(kind, lambda _event: changed.set())
        for kind in (AgentStateChanged, ConversationItemAdded, ToolCallFinished)
    ]
    try:
        async with asyncio.timeout(timeout_s):
            while not predicate():
                changed.clear()
                await changed.wait()
    finally:
        for off in offs:
            off()


async def _hang_up_when_done(session: AgentSession, known: set[str]) -> None:
    """Wait until the agent has answered (its goodbye played), then close the transport."""
    await wait_until(session, lambda: answered(session, known) or session.agent_state == "closed")
    log.info("hanging up (requested by a tool)")
    await session.transport.aclose()
