"""One provider response, from creation to settled history.

`ResponseRun` owns everything that happens to a single `Generation`:

1. playout — each message into its own sink segment (`ResponsePlayout`), concurrently with
2. tools — every complete call submitted to the executor as it arrives (runs during playout),
3. a stall watchdog — no progress for `stall_timeout_s` → cancel on the provider, and if the
   provider does not even acknowledge that, stop waiting (nothing hangs, P15-P18);
4. when every segment has its playout result and the response has ended: the heard ledger,
   whose operations (truncate/delete) are applied to the provider and whose items enter the
   history;
5. tool outputs — sent exactly once per call id as soon as the response ended and the tool
   finished, also when the turn was interrupted; then, only if the turn was *not* interrupted,
   a follow-up reply is queued (it starts after this response's audio finished playing: S12).

An interruption (`interrupt`) stops pulling messages and optionally cancels the response on
the provider; the session has already cleared the sink, so the playing segment reports
`partial` and the queued ones `skipped`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from vocalis.conversation.history import History
from vocalis.conversation.items import FunctionCallOutputItem, MessageItem
from vocalis.conversation.ledger import (
    AnnouncedItem,
    Delete,
    LedgerResult,
    ProviderOp,
    ReplaceText,
    ResponseOutcome,
    ToolCallOutcome,
    Truncate,
    settle_response,
)
from vocalis.providers.base import (
    Generation,
    GenerationDone,
    OperationError,
    RealtimeSession,
    ToolCall,
)
from vocalis.runtime.events import (
    ConversationItemAdded,
    ErrorEvent,
    HistoryOp,
    MessageMetrics,
    ResponseStarted,
    SessionEvent,
    TurnMetrics,
)
from vocalis.runtime.options import AgentSessionOptions
from vocalis.runtime.playout import ResponsePlayout
from vocalis.runtime.scheduler import ReplyRequest, ReplyScheduler
from vocalis.runtime.speech import SpeechHandle
from vocalis.runtime.states import StateTracker
from vocalis.runtime.tasks import TaskOwner, wait_for
from vocalis.runtime.tool_executor import ToolExecutor
from vocalis.runtime.tools import ToolResult
from vocalis.runtime.watchdog import StallWatchdog
from vocalis.transports.base import AudioSink, TextSink
from vocalis.utils.clock import Clock

log = logging.getLogger(__name__)

# On close, how long a cleared sink may take to report what was played (a browser page
# answers a clear within its own timeout; in-process sinks resolve at once).
_CLOSE_RESULT_WAIT_S = 2.0


@dataclass(slots=True)
class RunContext:
    """What a response run needs from its session (one per session, shared by runs)."""

    provider: RealtimeSession
    clock: Clock
    owner: TaskOwner
    sink: AudioSink | None
    text_sink: TextSink | None
    states: StateTracker
    history: History
    executor: ToolExecutor
    scheduler: ReplyScheduler
    options: AgentSessionOptions
    emit: Callable[[SessionEvent], None]
    sample_rate: int
    on_settled: Callable[[ResponseRun], None]
    # The provider's conversation lacks something the history holds (a rejected tool output).
    request_resync: Callable[[], None]


class ResponseRun:
    def __init__(
        self,
        ctx: RunContext,
        generation: Generation,
        *,
        handle: SpeechHandle,
        order_key: int,
        user_speech_end_at: float | None,
        requested_at: float | None,
    ) -> None:
        self.ctx = ctx
        self.generation = generation
        self.response_id = generation.response_id
        self.handle = handle
        handle.response_id = generation.response_id
        self.order_key = order_key
        self.user_speech_end_at = user_speech_end_at
        self.requested_at = requested_at
        self.created_at = ctx.clock.now()
        self.playout = ResponsePlayout(
            generation,
            sink=ctx.sink,
            text_sink=ctx.text_sink,
            clock=ctx.clock,
            owner=ctx.owner,
            sample_rate=ctx.sample_rate,
            tts=ctx.options.tts_fallback,
            on_progress=self.progress,
            on_first_frame=self.first_frame,
            transcript_interval=ctx.options.transcript_interval_s,
        )
        self.calls: list[ToolCall] = []
        self.interrupted = False
        self.interrupt_source: str | None = None
        self.stalled = False
        self.playout_finished = False
        self.settled = False
        # The caller spoke after our playout: their new turn will see the tool outputs.
        self.followup_cancelled = False
        self.last_progress = self.created_at
        self.done_info: GenerationDone | None = None
        self.ledger: LedgerResult | None = None
        self.metrics: TurnMetrics | None = None
        self._playout_task: asyncio.Task[None] | None = None
        self._tools_task: asyncio.Task[None] | None = None
        self._speaking = False
        self._done = generation.done
        # Set at the provider's end of the response, or when we stop waiting for it.
        self._ended = asyncio.Event()
        generation.done.add_done_callback(lambda _f: self._ended.set())
        self._tools_token = f"tools:{generation.response_id}"
        ctx.states.response_started(self.response_id)
        ctx.emit(ResponseStarted(self.response_id, handle.kind, self.created_at))

    # ------------------------------------------------------------------ hooks

    def progress(self) -> None:
        self.last_progress = self.ctx.clock.now()

    def first_frame(self) -> None:
        if self._speaking or self.interrupted:
            return
        self._speaking = True
        self.ctx.states.first_frame_played(self.response_id)

    @property
    def allow_interruptions(self) -> bool:
        return self.handle.allow_interruptions

    @property
    def lost(self) -> bool:
        """The response died with its connection (no `response.done`): not a barge-in.

        Its heard part is kept (cut by the connection, not interrupted), its tools still get
        their outputs and follow-up, and the session owes the caller an answer on the new
        connection when no follow-up will give one (`owes_reply`).
        """
        return (
            self._done.done()
            and not self._done.cancelled()
            and self._done.result().status == "disconnected"
        )

    @property
    def owes_reply(self) -> bool:
        """Lost before it finished and no tool follow-up will speak for it."""
        return self.lost and not self.interrupted and not self.calls

    @property
    def may_still_play(self) -> bool:
        """Audio of this response is playing, queued, or may still arrive."""
        return not self.playout_finished and not self.interrupted

    # ------------------------------------------------------------------ control

    def interrupt(self, source: str, *, cancel_provider: bool) -> bool:
        """Stop this response (the sink was already cleared). False if nothing was left."""
        if self.playout_finished or self.interrupted:
            return False
        self.interrupted = True
        self.interrupt_source = source
        self.handle.interrupted = True
        if not self.ctx.options.reply_after_interrupted_tools:
            # No follow-up will tell the caller about these tools: nobody waits on them, so
            # they no longer make the agent "thinking" (the caller has the floor).
            self.ctx.states.set_busy(self._tools_token, False)
        self._stop_pulling()
        if cancel_provider and not self._done.done():
            self.ctx.owner.spawn(self._cancel(), f"cancel:{self.response_id}")
        return True

    def _stop_pulling(self) -> None:
        """Take no more messages from the generation; the playout task ends open segments."""
        self.playout.stop()
        if self._playout_task is not None and not self._playout_task.done():
            self._playout_task.cancel()

    async def _cancel(self) -> None:
        try:
            await self.ctx.provider.cancel_response(self.response_id)
        except OperationError as exc:
            log.debug("cancel of %s rejected: %s", self.response_id, exc.message)

    # ------------------------------------------------------------------ main

    async def run(self) -> None:
        ctx = self.ctx
        self._tools_task = ctx.owner.spawn(self._collect_tools(), f"calls:{self.response_id}")
        answer_task = ctx.owner.spawn(self._answer_tools(), f"outputs:{self.response_id}")
        watchdog = ctx.owner.spawn(
            StallWatchdog(
                ctx.clock,
                limit_s=ctx.options.stall_timeout_s,
                ack_s=ctx.options.cancel_timeout_s,
                ended=self._done,
                last_progress=lambda: self.last_progress,
                on_stall=self._on_stall,
                on_unacknowledged=self._on_unacknowledged,
            ).run(),
            f"watchdog:{self.response_id}",
        )
        try:
            if self.handle.interrupted:
                self.interrupted = True
            else:
                self._playout_task = ctx.owner.spawn(
                    self.playout.run(), f"playout:{self.response_id}"
                )
                await asyncio.wait({self._playout_task})
            await self.playout.wait_played()
            self.playout_finished = True
            ctx.states.playout_ended(self.response_id)
            self.done_info = await self._await_done()
            watchdog.cancel()
            if self._tools_task is not None and not self._tools_task.done():
                self._tools_task.cancel()
            self._settle()
            await self._apply(self.ledger.ops if self.ledger else ())
            await asyncio.wait({answer_task})
            self._maybe_follow_up()
        finally:
            watchdog.cancel()
            ctx.states.set_busy(self._tools_token, False)
            await self.playout.close()
            self.settled = True
            self.handle._finish(interrupted=self.interrupted)
            ctx.on_settled(self)

    async def settle_on_close(self) -> None:
        """The session closed under this run (hang-up, `aclose`): record what was heard.

        Closing cancels the run's task, which would skip the ledger: the part of the answer
        the caller heard — and a tool call with its result — would be missing from the
        history the app saves at hang-up. So the ledger runs here on what is known (the
        results the cleared sink reported), without provider operations (the provider
        session ends too), and every kept call gets its output in the history (the executor
        resolves a cancelled tool with an error output): no call id is left unanswered.
        """
        ctx = self.ctx
        if self.ledger is None:
            if not self.playout_finished:
                self.interrupted = True
            for pulled in self.playout.pulled:
                segment = pulled.segment
                if pulled.result is not None or segment is None:
                    continue
                try:
                    pulled.result = await asyncio.wait_for(
                        segment.wait_for_playout(), _CLOSE_RESULT_WAIT_S
                    )
                except TimeoutError:
                    continue  # the transport cannot say: treated as never heard
                pulled.sync.finish(pulled.result)
            if self.done_info is None and self._done.done():
                self.done_info = self._done.result()
            self._settle()
        answered = {
            item.call_id for item in ctx.history.items() if isinstance(item, FunctionCallOutputItem)
        }
        for call in self.calls:
            run = ctx.executor.get(call.call_id)
            if call.call_id in answered or run is None or not run.future.done():
                continue
            self._record_output(call, run.future.result(), f"local_out_{call.call_id}")

    async def _await_done(self) -> GenerationDone:
        """The provider's end of the response; bounded so nothing waits forever."""
        ctx = self.ctx
        timeout = ctx.options.cancel_timeout_s
        if await wait_for(self._done, ctx.clock, timeout):
            return self._done.result()
        if self.interrupted and self.interrupt_source == "server_vad":
            # We trusted the server to cancel on speech onset; it did not. Cancel ourselves.
            await self._cancel()
            if await wait_for(self._done, ctx.clock, timeout):
                return self._done.result()
        if not self.interrupted and not self.stalled:
            # Playout ended without an end of response (stop by watchdog is handled there).
            await wait_for(self._done, ctx.clock, ctx.options.stall_timeout_s)
            if self._done.done():
                return self._done.result()
        ctx.emit(
            ErrorEvent(
                f"response {self.response_id} did not end; released without the provider's ack",
                code="response_not_acknowledged",
                source="watchdog",
                response_id=self.response_id,
            )
        )
        ctx.scheduler.release(self.response_id)
        self._ended.set()
        return GenerationDone(
            response_id=self.response_id,
            status="abandoned",
            output_item_ids=tuple(self.generation.announced_item_ids),
        )

    async def _on_stall(self) -> None:
        """No progress for `stall_timeout_s` (P15-P18, S17): report and cancel."""
        self.stalled = True
        limit = self.ctx.options.stall_timeout_s
        self.ctx.emit(
            ErrorEvent(
                f"response {self.response_id} produced nothing for {limit:g} s; cancelled",
                code="response_stalled",
                source="watchdog",
                response_id=self.response_id,
            )
        )
        await self._cancel()

    def _on_unacknowledged(self) -> None:
        """The provider ignores the cancel: stop pulling; received audio still plays out."""
        self._stop_pulling()

    # ------------------------------------------------------------------ tools

    async def _collect_tools(self) -> None:
        async for call in self.generation.tool_calls:
            self.calls.append(call)
            self.progress()
            self.ctx.executor.submit(call)

    async def _answer_tools(self) -> None:
        """Give each call exactly one output, once the response ended on the provider.

        Every output enters the history, sent or not: the tool ran, so the model must learn
        its result. It is sent at once unless the response was lost with its connection (its
        call does not exist in the new provider session yet: sending would be rejected as an
        unknown call id) or the provider rejects it; then the history holds it and the
        session's re-sync creates the call and its output there, in order, before any reply
        (the scheduler waits for that sync).
        """
        ctx = self.ctx
        await self._ended.wait()
        if self._tools_task is not None:
            await asyncio.wait({self._tools_task})
        if self.calls and not self.interrupted and not self.followup_cancelled:
            # Waiting for tool results the caller is meant to hear about: "thinking".
            ctx.states.set_busy(self._tools_token, True)
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
                output_id = await self._send_output(call, result)
            self._record_output(call, result, output_id or f"local_out_{call.call_id}", key)

    async def _send_output(self, call: ToolCall, result: ToolResult) -> str | None:
        """Send one output; None when the provider did not take it (the re-sync will)."""
        ctx = self.ctx
        try:
            return await ctx.provider.send_tool_output(call.call_id, result.output)
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

    def _record_output(
        self, call: ToolCall, result: ToolResult, item_id: str, key: int | None = None
    ) -> None:
        """A call's output enters the history (sent to the provider, or kept for a re-sync)."""
        ctx = self.ctx
        item = FunctionCallOutputItem(
            id=item_id,
            call_id=call.call_id,
            output=result.output,
            name=call.name,
            is_error=result.is_error,
            created_at=ctx.clock.now(),
        )
        ctx.history.add(item, ctx.history.next_key() if key is None else key)
        self.handle.items.append(item)
        ctx.emit(ConversationItemAdded(item))

    def _maybe_follow_up(self) -> None:
        """Queue the reply that tells the caller about the tool results (one per response)."""
        ctx = self.ctx
        wanted = bool(self.calls) and not self.followup_cancelled
        if self.interrupted and not ctx.options.reply_after_interrupted_tools:
            wanted = False
        if wanted:

            def still_wanted() -> bool:
                return not self.followup_cancelled

            ctx.scheduler.enqueue(
                ReplyRequest(
                    kind="tool_followup",
                    handle=SpeechHandle("tool_followup"),
                    tool_choice="auto",
                    still_wanted=still_wanted,
                )
            )
        ctx.states.set_busy(self._tools_token, False)

    def cancel_follow_up(self) -> None:
        """The caller took the floor: their turn's reply will see the tool outputs."""
        self.followup_cancelled = True
        self.ctx.states.set_busy(self._tools_token, False)

    # ------------------------------------------------------------------ ledger

    def _settle(self) -> None:
        ctx = self.ctx
        done = self.done_info
        announced_ids = list(done.output_item_ids if done else ())
        for item_id in self.generation.announced_item_ids:
            if item_id not in announced_ids:
                announced_ids.append(item_id)
        call_items = {c.item_id for c in self.calls}
        announced = tuple(
            AnnouncedItem(i, "function_call" if i in call_items else "message")
            for i in announced_ids
        )
        outcome = ResponseOutcome(
            response_id=self.response_id,
            announced=announced,
            messages=tuple(self.playout.outcomes(stalled=self.stalled)),
            tool_calls=tuple(
                ToolCallOutcome(c.item_id, c.call_id, c.name, c.arguments, self.created_at)
                for c in self.calls
            ),
        )
        result = settle_response(outcome)
        if done is not None and done.status == "disconnected":
            # The items live in a provider session that no longer exists; the session
            # re-syncs the whole heard history after the reconnect instead. Not a barge-in:
            # nobody took the floor (`lost`).
            result = LedgerResult(
                items=result.items,
                ops=(),
                verdicts=result.verdicts,
                interrupted=result.interrupted,
                kept_call_ids=result.kept_call_ids,
            )
        self.ledger = result
        for index, item in enumerate(result.items):
            ctx.history.add(item, self.order_key, index)
            self.handle.items.append(item)
            ctx.emit(ConversationItemAdded(item))
        heard = {v.item_id: v.heard_text for v in result.verdicts}
        if ctx.text_sink is not None:
            for pulled in self.playout.pulled:
                if pulled.result is not None:
                    ctx.text_sink.agent_segment_ended(
                        pulled.message.item_id, pulled.result, heard.get(pulled.message.item_id, "")
                    )
        self.metrics = self._metrics(result)
        ctx.emit(self.metrics)

    async def _apply(self, ops: tuple[ProviderOp, ...] | list[ProviderOp]) -> None:
        ctx = self.ctx
        for op in ops:
            name = type(op).__name__.lower()
            try:
                if isinstance(op, Truncate):
                    call = ctx.provider.truncate(op.item_id, op.audio_end_ms)
                elif isinstance(op, Delete):
                    call = ctx.provider.delete_item(op.item_id)
                else:
                    call = self._replace_text(op)
                finished = await wait_for(call, ctx.clock, ctx.options.operation_timeout_s)
            except OperationError as exc:
                # S16: a rejected truncate/delete is reported, never fatal.
                ctx.emit(
                    ErrorEvent(
                        f"{name} of {op.item_id} rejected: {exc.message}",
                        code=exc.code,
                        operation=name,
                    )
                )
                continue
            if not finished:
                ctx.emit(
                    ErrorEvent(
                        f"{name} of {op.item_id} not confirmed in time",
                        code="operation_timeout",
                        operation=name,
                    )
                )

    async def _replace_text(self, op: ReplaceText) -> None:
        ctx = self.ctx
        items = ctx.history.items()
        index = ctx.history.index_of(op.item_id)
        previous = items[index - 1].id if index else None
        await ctx.provider.delete_item(op.item_id)
        await ctx.provider.create_item(
            MessageItem(id=op.item_id, role="assistant", text=op.text), previous_item_id=previous
        )

    # ------------------------------------------------------------------ metrics

    def _metrics(self, result: LedgerResult) -> TurnMetrics:
        playout = self.playout
        start = self.user_speech_end_at
        first_received = playout.first_audio_received_at
        first_played = playout.first_played_at
        first_voice = playout.first_voice_played_at
        anchor = start if start is not None else self.requested_at
        ops = {op.item_id: _history_op(op) for op in result.ops}
        messages = tuple(
            MessageMetrics(
                item_id=p.message.item_id,
                generated_ms=p.outcome().received_ms,
                played_ms=p.result.played_ms if p.result is not None else 0.0,
                playout=p.result.status.value if p.result is not None else "skipped",
                generated_text=p.message.account.text,
                pulled_at=p.pulled_at,
                started_at=p.result.started_at if p.result is not None else None,
                ended_at=p.result.ended_at if p.result is not None else None,
                history_op=ops.get(p.message.item_id, "none"),
            )
            for p in playout.pulled
        )
        return TurnMetrics(
            response_id=self.response_id,
            origin=self.handle.kind,
            user_speech_end_at=start,
            requested_at=self.requested_at,
            created_at=self.created_at,
            first_audio_received_at=first_received,
            first_audio_played_at=first_played,
            first_voice_played_at=first_voice,
            voice_to_voice_ms=(
                (first_voice - start) * 1000.0
                if first_voice is not None and start is not None
                else None
            ),
            time_to_first_audio_ms=(
                (first_received - anchor) * 1000.0
                if first_received is not None and anchor is not None
                else None
            ),
            playback_latency_ms=(
                (first_played - first_received) * 1000.0
                if first_played is not None and first_received is not None
                else None
            ),
            interrupted=self.interrupted or result.interrupted,
            status=self.done_info.status if self.done_info else None,
            messages=messages,
        )


def _history_op(op: ProviderOp) -> HistoryOp:
    if isinstance(op, Truncate):
        return "truncate"
    if isinstance(op, Delete):
        return "delete"
    return "replace_text"
