"""The tool side of one response: its calls, exactly one output each, and the follow-up.

A `ToolRound` belongs to one `ResponseRun`. It submits every complete call to the executor
as it arrives (tools run during playout), gives each call exactly one output once the
response ended on the provider, and asks for the follow-up reply that tells the caller about
the results — unless the caller took the floor (a barge-in, or their new turn after playout:
that turn's reply sees the outputs).

Every output enters the history, sent or not: the tool ran, so the model must learn its
result. It is sent at once unless its response was lost with its connection (the call does
not exist in the new provider session yet: sending would be rejected as an unknown call id)
or the provider rejects it; then the history holds it and the session's re-sync creates the
call and its output there, in order, before any reply (the scheduler waits for that sync).

The output item's id is chosen here, from the call id (`output_item_id`): the same on every
attempt, so an output whose create timed out but went through is never created twice — the
provider's retry and the re-sync find it under that id.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from vocalis.conversation.items import FunctionCallOutputItem
from vocalis.providers.base import Generation, OperationError, ToolCall
from vocalis.runtime.events import ConversationItemAdded, ErrorEvent
from vocalis.runtime.scheduler import ReplyRequest
from vocalis.runtime.speech import SpeechHandle
from vocalis.runtime.tools import ToolResult

if TYPE_CHECKING:
    from vocalis.runtime.response import RunContext


def output_item_id(call_id: str) -> str:
    """The id of `call_id`'s output item: one output per call id, the same on every attempt."""
    return f"out_{call_id}"


class ToolRound:
    def __init__(
        self,
        ctx: RunContext,
        generation: Generation,
        handle: SpeechHandle,
        *,
        on_progress: Callable[[], None],
    ) -> None:
        self._ctx = ctx
        self._generation = generation
        self._handle = handle
        self._on_progress = on_progress
        self.calls: list[ToolCall] = []
        # The caller took the floor after playout: their new turn will see the outputs.
        self.followup_cancelled = False
        self._ended = False  # the response ended on the provider (or the run gave up on it)
        self._all_in = False  # the call channel closed: every call of the response arrived
        self._answering: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ calls in

    def attach(self) -> None:
        """Take every complete call as it arrives, from now on (runs concurrently with playout).

        Calls are taken inside the provider's receive step (`Channel.forward_to`), so every
        call is known — and its follow-up owed — before its response can end: the agent stays
        `thinking` from the end of the playout to the follow-up, never `listening` between.
        Synchronous, with no task of its own: most responses have no call, and at a lockstep
        response boundary every task per response lands on the loop at once (#17). The
        answer step becomes a task only once a call arrived (`_answer_when_ready`).
        """
        calls = self._generation.tool_calls
        calls.forward_to(self._take)
        calls.on_close(self._calls_complete)
        self._generation.done.add_done_callback(self._provider_ended)

    def _take(self, call: ToolCall) -> None:
        if self._ctx.owner.closed:
            return  # closing: the run's close records what it knows; nothing new starts
        try:
            self._submit(call)
        except Exception as exc:  # reported like a failed task; the provider's step goes on
            self._ctx.owner.report(f"call:{call.call_id}", exc)

    def _submit(self, call: ToolCall) -> None:
        self.calls.append(call)
        self._on_progress()
        self._ctx.executor.submit(call)
        if not self._handle.interrupted and not self.followup_cancelled:
            self._ctx.states.follow_up_owed(self._generation.response_id)

    def _calls_complete(self) -> None:
        self._all_in = True
        self._answer_when_ready()

    def _provider_ended(self, _done: object = None) -> None:
        self._ended = True
        self._answer_when_ready()

    def stop_taking(self, *, ended: bool = False) -> None:
        """Take no more calls (the run settles, or stops waiting for the provider's end).

        `ended`: the run released the response without the provider's end (abandoned): the
        calls that arrived are all there will be, and they are answered now.
        """
        self._generation.tool_calls.stop_forwarding()
        if ended:
            self._all_in = self._ended = True
            self._answer_when_ready()

    def _answer_when_ready(self) -> None:
        """Start the answer step once the response ended and every call is in, if any came."""
        if not (self._ended and self._all_in and self.calls) or self._answering is not None:
            return
        owner = self._ctx.owner
        if not owner.closed:  # closing: `record_on_close` answers in the history
            self._answering = owner.spawn(self.answer(), f"outputs:{self._generation.response_id}")

    async def answered(self) -> None:
        """Wait until the answer step (if a call arrived) finished; its failure is reported
        by the task's owner, not raised here (the run still settles)."""
        if self._answering is not None:
            await asyncio.wait({self._answering})

    # ------------------------------------------------------------------ outputs out

    @property
    def lost(self) -> bool:
        """The response died with its connection: its outputs wait for the re-sync (the call
        does not exist in the new provider session yet)."""
        done = self._generation.done
        return done.done() and not done.cancelled() and done.result().status == "disconnected"

    async def answer(self) -> None:
        """Give each call exactly one output (once the response ended on the provider)."""
        ctx = self._ctx
        for call in self.calls:
            run = ctx.executor.get(call.call_id)
            if run is None:
                continue
            result = await asyncio.shield(run.future)
            if run.output_sent:
                continue
            run.output_sent = True
            # Its place in the conversation: when it is sent (a caller turn the provider
            # commits while the send is in flight comes after it there, too).
            key = ctx.history.next_key()
            if self.lost:
                output_id = None
                ctx.request_resync()  # holds replies until the sync created call and output
            else:
                output_id = await self._send(call, result)
            self.record(call, result, output_id or output_item_id(call.call_id), key)

    async def _send(self, call: ToolCall, result: ToolResult) -> str | None:
        """Send one output; None when the provider did not take it (the re-sync will)."""
        ctx = self._ctx
        try:
            return await ctx.provider.send_tool_output(
                call.call_id, result.output, item_id=output_item_id(call.call_id)
            )
        except OperationError as exc:
            ctx.emit(
                ErrorEvent(
                    f"tool output for {call.call_id} not accepted ({exc.message}); "
                    "kept in the history, re-synced",
                    code=exc.code,
                    operation="tool_output",
                )
            )
            ctx.request_resync()
            return None

    def record(
        self, call: ToolCall, result: ToolResult, item_id: str, key: int | None = None
    ) -> None:
        """A call's output enters the history (sent to the provider, or kept for a re-sync)."""
        ctx = self._ctx
        item = FunctionCallOutputItem(
            id=item_id,
            call_id=call.call_id,
            output=result.output,
            name=call.name,
            is_error=result.is_error,
            created_at=ctx.clock.now(),
        )
        ctx.history.add(item, ctx.history.next_key() if key is None else key)
        self._handle.items.append(item)
        ctx.emit(ConversationItemAdded(item))

    def record_on_close(self) -> None:
        """The session closed: every kept call whose tool finished gets its output locally
        (the executor resolves a cancelled tool with an error output): none left unanswered."""
        ctx = self._ctx
        answered = {
            item.call_id for item in ctx.history.items() if isinstance(item, FunctionCallOutputItem)
        }
        for call in self.calls:
            run = ctx.executor.get(call.call_id)
            if call.call_id in answered or run is None or not run.future.done():
                continue
            self.record(call, run.future.result(), output_item_id(call.call_id))

    # ------------------------------------------------------------------ follow-up

    def follow_up(self, *, interrupted: bool) -> None:
        """Queue the reply that tells the caller about the results (one per response)."""
        ctx = self._ctx
        wanted = bool(self.calls) and not self.followup_cancelled
        if interrupted and not ctx.options.reply_after_interrupted_tools:
            wanted = False
        if wanted:
            ctx.scheduler.enqueue(
                ReplyRequest(
                    kind="tool_followup",
                    handle=SpeechHandle("tool_followup"),
                    tool_choice="auto",
                    still_wanted=lambda: not self.followup_cancelled,
                )
            )
        self.settle_follow_up()

    def cancel_follow_up(self) -> None:
        """The caller took the floor: their turn's reply will see the tool outputs."""
        self.followup_cancelled = True
        self.settle_follow_up()

    def settle_follow_up(self) -> None:
        """The follow-up owed since the first call is queued (the queue keeps the agent
        "thinking" from now on), or nobody waits for it any more. Idempotent."""
        self._ctx.states.follow_up_settled(self._generation.response_id)
