"""Runs tool calls exactly once, concurrently with playout, and remembers every output.

A call id is the model's handle on a side effect (a booking, an order). Providers can deliver
the same call twice — a retried response, a replay after reconnect, Gemini's "trigger repeat"
— and a framework that re-runs it books twice (P21). So the executor keys every run by
`call_id`: the first submission starts the tool, later ones get the same future. Runs are
owned tasks (cancelled and awaited on session close) and report start/finish through
callbacks, so the session can emit events and send each output to the provider exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vocalis.providers.base import ToolCall
from vocalis.runtime.tasks import TaskOwner
from vocalis.runtime.tools import FunctionTool, ToolResult, _error
from vocalis.utils.clock import Clock

if TYPE_CHECKING:
    from vocalis.runtime.context import ToolContext


@dataclass(slots=True)
class ToolRun:
    """One execution of one call id."""

    call_id: str
    name: str
    arguments: str
    item_id: str
    response_id: str
    started_at: float
    future: asyncio.Future[ToolResult]
    finished_at: float | None = None
    result: ToolResult | None = None
    # Set by the session once the output reached the provider (exactly-once bookkeeping).
    output_sent: bool = False


class ToolExecutor:
    def __init__(
        self,
        owner: TaskOwner,
        clock: Clock,
        *,
        on_started: Callable[[ToolRun], None] | None = None,
        on_finished: Callable[[ToolRun], None] | None = None,
        context: Callable[[ToolRun], ToolContext] | None = None,
    ) -> None:
        self._owner = owner
        self._context = context
        self._clock = clock
        self._tools: dict[str, FunctionTool] = {}
        self._runs: dict[str, ToolRun] = {}
        self._on_started = on_started
        self._on_finished = on_finished

    def set_tools(self, tools: Sequence[FunctionTool]) -> None:
        """Tools for calls submitted from now on (running calls keep their tool)."""
        self._tools = {tool.name: tool for tool in tools}

    @property
    def runs(self) -> list[ToolRun]:
        return list(self._runs.values())

    def get(self, call_id: str) -> ToolRun | None:
        return self._runs.get(call_id)

    @property
    def busy(self) -> bool:
        return any(not run.future.done() for run in self._runs.values())

    def submit(self, call: ToolCall) -> ToolRun:
        """Start `call` unless its call id already ran; either way return its run."""
        existing = self._runs.get(call.call_id)
        if existing is not None:
            return existing
        future: asyncio.Future[ToolResult] = asyncio.get_running_loop().create_future()
        run = ToolRun(
            call_id=call.call_id,
            name=call.name,
            arguments=call.arguments,
            item_id=call.item_id,
            response_id=call.response_id,
            started_at=self._clock.now(),
            future=future,
        )
        self._runs[call.call_id] = run
        tool = self._tools.get(call.name)
        if self._on_started is not None:
            self._on_started(run)
        self._owner.spawn(self._execute(run, tool), f"tool:{call.name}:{call.call_id}")
        return run

    async def _execute(self, run: ToolRun, tool: FunctionTool | None) -> None:
        try:
            if tool is None:
                available = ", ".join(sorted(self._tools)) or "none"
                result = _error(f"unknown tool {run.name!r}; available tools: {available}")
            else:
                context = self._context(run) if self._context is not None else None
                result = await tool.invoke(run.arguments, context)
        except asyncio.CancelledError:
            # Session closing: the call still gets an answer in the record.
            self._finish(run, _error(f"{run.name} was cancelled"))
            raise
        self._finish(run, result)

    def _finish(self, run: ToolRun, result: ToolResult) -> None:
        if run.future.done():
            return
        run.result = result
        run.finished_at = self._clock.now()
        run.future.set_result(result)
        if self._on_finished is not None:
            self._on_finished(run)
