"""`Agent`: what the model is told and what it can do.

An agent is plain configuration — instructions, tools, voice — so it can be swapped live with
`AgentSession.update_agent()` (a hand-off): the session pushes the new instructions and tools
to the provider without reconnecting, and the conversation (heard history) carries over.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from vocalis.providers.base import ToolSpec
from vocalis.runtime.tools import FunctionTool, ToolFunction, as_tool

if TYPE_CHECKING:
    from vocalis.runtime.session import AgentSession

# Runs when a hand-off makes this agent the active one (sync or async).
OnEnter = Callable[["AgentSession"], Awaitable[None] | None]


class Agent:
    """Instructions + tools (+ voice) for one role of a conversation."""

    def __init__(
        self,
        instructions: str,
        tools: Sequence[FunctionTool | ToolFunction] = (),
        *,
        voice: str | None = None,
        name: str | None = None,
        greeting: str | None = None,
        on_enter: OnEnter | None = None,
    ) -> None:
        """
        Args:
            instructions: the system instructions sent to the provider.
            tools: `@function_tool` objects or plain (async) functions.
            voice: provider voice name; None keeps the provider default. Voices cannot change
                after the first audio on OpenAI, so a hand-off keeps the first voice.
            name: for logs and events.
            greeting: if set, `AgentSession.start()` says it (uninterruptible) via `say()`.
            on_enter: called with the session when a tool hands the call to this agent
                (`ToolContext.handoff`), after its instructions and tools are active — e.g.
                `lambda session: session.generate_reply()` to introduce itself.
        """
        self.instructions = instructions
        self.tools: tuple[FunctionTool, ...] = tuple(as_tool(tool) for tool in tools)
        names = [tool.name for tool in self.tools]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"duplicate tool names: {sorted(duplicates)}")
        self.voice = voice
        self.name = name or "agent"
        self.greeting = greeting
        self.on_enter = on_enter

    @property
    def tool_specs(self) -> tuple[ToolSpec, ...]:
        return tuple(tool.spec for tool in self.tools)

    def __repr__(self) -> str:
        return f"Agent(name={self.name!r}, tools={[t.name for t in self.tools]})"
