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
from vocalis.conversation.items import MessageItem
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
    InterruptSource,
    ResponseStarted,
    SessionEvent,
    TurnMetrics,
)
from vocalis.runtime.options import AgentSessionOptions
from vocalis.runtime.playout import ResponsePlayout
from vocalis.runtime.response_phase import ResponsePhase, StopReason
from vocalis.runtime.run_hooks import RunHooks
from vocalis.runtime.scheduler import ReplyScheduler
from vocalis.runtime.speech import SpeechHandle
from vocalis.runtime.states import StateTracker
from vocalis.runtime.tasks import TaskOwner, wait_for
from vocalis.runtime.tool_executor import ToolExecutor
from vocalis.runtime.tool_round import ToolRound
from vocalis.runtime.turn_metrics import turn_metrics
from vocalis.runtime.watchdog import StallWatchdog
from vocalis.transports.base import AudioSink, TextSink
from vocalis.utils.clock import Clock

log = logging.getLogger(__name__)


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
    # Watches every open run's progress (one per session, not a task per response).
    watchdog: StallWatchdog


class ResponseRun:
    """Everything that happens to one provider response (see the module docstring)."""

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
        self._hooks = RunHooks(self)  # not bound methods: no run <-> playout cycle
        self.playout = ResponsePlayout(
            generation,
            sink=ctx.sink,
            text_sink=ctx.text_sink,
            clock=ctx.clock,
            owner=ctx.owner,
            sample_rate=ctx.sample_rate,
            tts=ctx.options.tts_fallback,
            on_progress=self._hooks.progress,
            on_first_frame=self._hooks.first_frame,
            transcript_interval=ctx.options.transcript_interval_s,
        )
        self.tools = ToolRound(ctx, generation, handle, on_progress=self._hooks.progress)
        self.phase = ResponsePhase.PLAYING
        self.stop: StopReason | None = None
        self.interrupt_source: InterruptSource | None = None
        self.last_progress = self.created_at
        self.done_info: GenerationDone | None = None
        self.ledger: LedgerResult | None = None
        self.metrics: TurnMetrics | None = None
        # The scope of the playout's pulling while it runs (`_pull`); `_stop_pulling` ends it.
        self._pulling: asyncio.Timeout | None = None
        self._speaking = False
        self._done = generation.done
        ctx.states.response_started(self.response_id)
        self.tools.attach()
        if not handle.interrupted:
            self.playout.prestart()  # the first-audio path: no task hop before the sink
        ctx.emit(ResponseStarted(self.response_id, handle.kind, self.created_at))

    # ------------------------------------------------------------------ state

    @property
    def ended(self) -> asyncio.Future[GenerationDone]:
        """The provider's end of the response (also the acknowledgement of a cancel)."""
        return self._done

    @property
    def calls(self) -> list[ToolCall]:
        return self.tools.calls

    @property
    def interrupted(self) -> bool:
        """The caller or the app cut it (a drop, a stall or a provider's end is not that)."""
        return self.stop is StopReason.INTERRUPTED

    @property
    def stalled(self) -> bool:
        return self.stop is StopReason.STALLED

    @property
    def playout_finished(self) -> bool:
        return self.phase is not ResponsePhase.PLAYING

    @property
    def settled(self) -> bool:
        return self.phase is ResponsePhase.SETTLED

    @property
    def followup_cancelled(self) -> bool:
        return self.tools.followup_cancelled

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
        return self.tools.lost

    @property
    def owes_reply(self) -> bool:
        """Lost before it finished and no tool follow-up will speak for it."""
        return self.lost and not self.interrupted and not self.calls

    @property
    def may_still_play(self) -> bool:
        """Audio of this response is playing, queued, or may still arrive."""
        return self.phase is ResponsePhase.PLAYING and not self.interrupted

    # ------------------------------------------------------------------ hooks

    def progress(self) -> None:
        self.last_progress = self.ctx.clock.now()

    def first_frame(self) -> None:
        if self._speaking or self.interrupted:
            return
        self._speaking = True
        self.ctx.states.first_frame_played(self.response_id)

    # ------------------------------------------------------------------ control

    def interrupt(self, source: InterruptSource, *, cancel_provider: bool) -> bool:
        """Stop this response (the sink was already cleared). False if nothing was left."""
        if not self.may_still_play:
            return False
        self.stop = StopReason.INTERRUPTED
        self.interrupt_source = source
        self.handle.interrupted = True
        # The caller has the floor: these tools no longer make the agent "thinking" (a
        # follow-up still requested for them does, once queued).
        self.tools.settle_follow_up()
        self._stop_pulling()
        if cancel_provider and not self._done.done():
            self.ctx.owner.spawn(self._cancel(), f"cancel:{self.response_id}")
        return True

    def cancel_follow_up(self) -> None:
        """The caller took the floor after playout: their turn's reply sees the outputs."""
        self.tools.cancel_follow_up()

    def _stop_pulling(self) -> None:
        """Take no more messages from the generation; the playout ends open segments."""
        self.playout.stop()
        scope = self._pulling
        if scope is not None and not scope.expired():
            scope.reschedule(asyncio.get_running_loop().time())  # cut the pulling now

    async def _cancel(self) -> None:
        try:
            await self.ctx.provider.cancel_response(self.response_id)
        except OperationError as exc:
            log.debug("cancel of %s rejected: %s", self.response_id, exc.message)

    # ------------------------------------------------------------------ main

    async def run(self) -> None:
        ctx = self.ctx
        ctx.watchdog.watch(self)
        try:
            await self._play()
            self.phase = ResponsePhase.AWAITING_DONE
            ctx.states.playout_ended(self.response_id)
            self.done_info = await self._await_done()
            ctx.watchdog.unwatch(self)
            self.tools.stop_taking(ended=True)
            self.phase = ResponsePhase.SETTLING
            self._settle()
            await self._apply(self.ledger.ops if self.ledger else ())
            await self.tools.answered()
            self.tools.follow_up(interrupted=self.interrupted)
        finally:
            ctx.watchdog.unwatch(self)
            self.tools.stop_taking()
            self.tools.settle_follow_up()
            self.playout.close()
            self.phase = ResponsePhase.SETTLED
            cut = self.stop in (StopReason.INTERRUPTED, StopReason.CLOSED)
            self.handle._finish(interrupted=cut)
            self._hooks.release()
            ctx.on_settled(self)

    async def _play(self) -> None:
        """Play every message until each segment has its result (or the run was cut first)."""
        if self.handle.interrupted:
            # Cut while it was being requested (the caller spoke first): nothing plays.
            self.stop = StopReason.INTERRUPTED
        else:
            await self._pull()
        await self.playout.wait_played()

    async def _pull(self) -> None:
        """Pull every message into the sink, in this task. An interruption cuts it short by
        expiring its timeout scope (`_stop_pulling`) rather than by cancelling a task of its
        own: one task less per response, at a lockstep boundary for every session (#17).
        A failure is reported like a failed task's; the run still settles what played."""
        scope = asyncio.timeout(None)
        try:
            async with scope:
                self._pulling = scope
                try:
                    await self.playout.run()
                finally:
                    self._pulling = None
        except TimeoutError as exc:
            if not scope.expired():
                self.ctx.owner.report(f"playout:{self.response_id}", exc)
        except Exception as exc:
            self.ctx.owner.report(f"playout:{self.response_id}", exc)

    def stop_on_close(self) -> None:
        """The session closes under this run: a response still playing was cut by it.

        Closing cancels the run's task, which would skip the ledger; `runtime.closing`
        settles it instead (see `settle_on_close` there).
        """
        if self.ledger is None and self.phase is ResponsePhase.PLAYING and not self.interrupted:
            self.stop = StopReason.CLOSED

    def settle_closed(self) -> None:
        """Record what was heard, on the segment results the cleared sink reported: the
        ledger without provider operations (the provider session ends too), and every kept
        call's output in the history (the executor resolves a cancelled tool with an error
        output): no call id is left unanswered."""
        if self.ledger is None:
            if self.done_info is None and self._done.done():
                self.done_info = self._done.result()
            self._settle()
        self.tools.record_on_close()

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
        if self.stop is None:
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
        return GenerationDone(
            response_id=self.response_id,
            status="abandoned",
            output_item_ids=tuple(self.generation.announced_item_ids),
        )

    async def on_stall(self) -> None:
        """No progress for `stall_timeout_s` (P15-P18, S17): report and cancel."""
        if self.stop is None:
            self.stop = StopReason.STALLED
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

    def on_unacknowledged(self) -> None:
        """The provider ignores the cancel: stop pulling; received audio still plays out."""
        self._stop_pulling()

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
        self.metrics = turn_metrics(self, result)
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
