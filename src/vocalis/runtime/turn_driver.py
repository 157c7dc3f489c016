"""The asyncio shell around the turn-taking core (`turns.TurnTaking`).

`TurnDriver` turns what happens — provider VAD events, local VAD events, commits,
transcripts, a refused server reply, reconnects, responses starting and settling — into
`turns` facts, and executes the decisions the core returns: expect a reply (bounded
`thinking`), drop tool follow-ups, add or delete caller items, clear the input buffer, commit
a local turn, cancel an unwanted response, request a reply, hold replies and re-sync the
history. It also cuts the agent's speech (`interrupt`), for the interruption controller, the
app and typed messages. The decisions themselves live in `turns.py` (pure, property-tested);
this module only does I/O and keeps the session clock's timers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import assert_never

from vocalis.audio.vad import VADEvent
from vocalis.conversation.history import History
from vocalis.conversation.items import MessageItem
from vocalis.providers.base import (
    ErrorKind,
    InputAudioCommitted,
    InputSpeechStarted,
    InputSpeechStopped,
    InputTranscription,
    OperationError,
    ProviderError,
    ProviderEvent,
    RealtimeSession,
    SessionReconnected,
)
from vocalis.runtime.events import (
    ConversationItemAdded,
    ErrorEvent,
    Interrupted,
    InterruptSource,
    SessionEvent,
    UserTranscript,
)
from vocalis.runtime.interruption import InterruptionController
from vocalis.runtime.metrics import InputTimeline
from vocalis.runtime.options import AgentSessionOptions
from vocalis.runtime.response import ResponseRun
from vocalis.runtime.scheduler import ReplyRequest, ReplyScheduler
from vocalis.runtime.speech import SpeechHandle
from vocalis.runtime.states import StateTracker
from vocalis.runtime.tasks import TaskOwner
from vocalis.runtime.turns import (
    AddCallerTurn,
    CancelResponse,
    ClearInput,
    Committed,
    CommitTurn,
    Decision,
    DeleteItem,
    DropFollowUps,
    ExpectReply,
    Fact,
    HoldReplies,
    Reconnected,
    RequestReply,
    Resync,
    Resynced,
    ServerReplyRefused,
    SpeechStarted,
    SpeechStopped,
    TurnConfig,
    TurnTaking,
)
from vocalis.transports.base import Transport
from vocalis.utils.clock import Clock

log = logging.getLogger(__name__)

_RESYNC_HOLD = "resync"


@dataclass(slots=True)
class TurnContext:
    """What the driver works with; the session owns all of it."""

    provider: RealtimeSession
    scheduler: ReplyScheduler
    history: History
    states: StateTracker
    transport: Transport
    clock: Clock
    owner: TaskOwner
    options: AgentSessionOptions
    emit: Callable[[SessionEvent], None]
    enqueue: Callable[[ReplyRequest], None]
    # Responses started and not yet settled (the session's own list).
    runs: Callable[[], list[ResponseRun]]


class TurnDriver:
    def __init__(self, ctx: TurnContext, config: TurnConfig) -> None:
        self.ctx = ctx
        self.core = TurnTaking(config)
        self.timeline = InputTimeline()
        self.interruptions = InterruptionController(
            ctx.options.interruption,
            ctx.clock,
            ctx.owner,
            self.interrupt,
            agent_speaking=lambda: ctx.states.agent == "speaking",
            pause=self._pause_playback,
            resume=self._resume_playback,
        )
        # When the caller's last turn ended (session clock), for the reply's latency metrics.
        self.speech_end_at: float | None = None
        self._expect_timer: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ facts in

    def tell(self, fact: Fact) -> list[Decision]:
        """Give the core a fact and carry out what it decides; returns the decisions."""
        decisions = self.core.decide(fact)
        for decision in decisions:
            self._execute(decision)
        return decisions

    def _execute(self, decision: Decision) -> None:
        owner = self.ctx.owner
        match decision:
            case ExpectReply(expected=expected):
                self._expect_reply(expected)
            case DropFollowUps():
                self._drop_follow_ups()
            case AddCallerTurn(item_id=item_id):
                self.add_user_item(item_id, "")
            case DeleteItem(item_id=item_id):
                owner.spawn(self._delete(item_id), "drop-backchannel")
            case ClearInput():
                owner.spawn(self._clear_input(), "clear-backchannel")
            case CommitTurn():
                owner.spawn(self._commit_and_reply(), "local-turn")
            case CancelResponse(response_id=response_id):
                owner.spawn(self._cancel(response_id), "cancel-backchannel-reply")
            case RequestReply():
                self._request_reply(decision)
            case HoldReplies():
                self.ctx.scheduler.hold(_RESYNC_HOLD)
            case Resync():
                self._resync()
            case _:
                assert_never(decision)

    def provider_event(self, event: ProviderEvent) -> None:
        """The provider's turn events: speech, commits, transcripts, a refused reply, a
        reconnect (other events are the session's)."""
        match event:
            case InputSpeechStarted():
                self.server_speech_started(event)
            case InputSpeechStopped():
                self.server_speech_stopped(event)
            case InputAudioCommitted(item_id=item_id):
                self.committed(item_id)
            case InputTranscription():
                self.transcription(event)
            case ProviderError() if event.kind is ErrorKind.BUSY and event.operation is None:
                # The server's own VAD reply collided with a response still running.
                self.tell(ServerReplyRefused())
            case SessionReconnected():
                self.timeline.reset()  # a new provider session counts input audio from zero
                self.tell(Reconnected())
                # A reply request the drop interrupted is sent again now, not after a delay.
                self.ctx.scheduler.wake()

    def speech_started(self, item_id: str | None, source: InterruptSource, onset_ms: float) -> None:
        ctx = self.ctx
        ctx.states.set_user("speaking")
        self.tell(SpeechStarted(item_id))
        td = ctx.options.server_turn_detection
        provider_cancels = (
            source == "server_vad"
            and td is not None
            and td.interrupt_response
            and ctx.provider.capabilities.server_interrupts_response
        )
        self.interruptions.speech_started(
            source,
            provider_cancels=provider_cancels,
            onset_ms=onset_ms,
            silence_s=self._silence_window_ms() / 1000.0,
        )

    def speech_stopped(
        self, speech_end_at: float | None, voice_end_ms: float, item_id: str | None
    ) -> None:
        self.ctx.states.set_user("listening")
        backchannel = self.interruptions.speech_stopped(voice_end_ms)
        if not backchannel:
            self.speech_end_at = (
                speech_end_at if speech_end_at is not None else self.ctx.clock.now()
            )
        self.tell(SpeechStopped(item_id, backchannel=backchannel))

    def server_speech_started(self, event: InputSpeechStarted) -> None:
        # OpenAI's `audio_start_ms` includes the prefix padding (default 300 ms) before the
        # detected onset.
        td = self.ctx.options.server_turn_detection
        padding = 300 if td is None or td.prefix_padding_ms is None else td.prefix_padding_ms
        self.speech_started(event.item_id, "server_vad", event.audio_start_ms + padding)

    def server_speech_stopped(self, event: InputSpeechStopped) -> None:
        # OpenAI's `audio_end_ms` for server VAD includes the silence window that confirmed
        # the end; latency is measured from the voice's end.
        td = self.ctx.options.server_turn_detection
        voice_end_ms = event.audio_end_ms
        if td is not None and td.type == "server_vad":
            silence = td.silence_duration_ms if td.silence_duration_ms is not None else 500
            voice_end_ms = max(0.0, event.audio_end_ms - silence)
        self.speech_stopped(self.timeline.clock_time_of(voice_end_ms), voice_end_ms, event.item_id)

    def local_vad(self, event: VADEvent) -> None:
        """Client-side turn taking: interrupt on speech, commit + reply at its end."""
        if event.kind == "speech_started":
            self.speech_started(None, "local_vad", event.onset_ms)
            return
        self.speech_stopped(self.timeline.clock_time_of(event.onset_ms), event.onset_ms, None)

    def committed(self, item_id: str) -> None:
        self.tell(Committed(item_id))

    def transcription(self, event: InputTranscription) -> None:
        if event.item_id in self.core.backchannels:
            return  # not part of the conversation
        ctx = self.ctx
        ctx.emit(UserTranscript(event.item_id, event.text, event.final))
        text_sink = ctx.transport.text_out
        if text_sink is not None:
            text_sink.user_transcript(event.item_id, event.text, event.final)
        if event.final:
            self.add_user_item(event.item_id, event.text)

    def _silence_window_ms(self) -> float:
        """How long after the voice stops its end is reported (the VAD's silence window)."""
        options = self.ctx.options
        td = options.server_turn_detection
        if self.core.config.local_turns or td is None:
            return options.local_vad.min_silence_ms
        return td.silence_duration_ms if td.silence_duration_ms is not None else 500.0

    # ------------------------------------------------------------------ decisions out

    def _expect_reply(self, expected: bool) -> None:
        """`thinking` from the end of the caller's turn until the response starts (bounded)."""
        if self._expect_timer is not None and not self._expect_timer.done():
            self._expect_timer.cancel()
        self._expect_timer = None
        self.ctx.states.expect_reply(expected)
        if expected and not self.core.closing:
            self._expect_timer = self.ctx.owner.spawn(self._expire_expectation(), "expect-reply")

    async def _expire_expectation(self) -> None:
        await self.ctx.clock.sleep(self.ctx.options.stall_timeout_s)
        self.ctx.states.expect_reply(False)

    def _drop_follow_ups(self) -> None:
        # The caller takes the floor: their turn gets the answer (the tool outputs are in the
        # conversation by then), not a tool follow-up queued before they spoke.
        for run in self.ctx.runs():
            if run.playout_finished:
                run.cancel_follow_up()
        for request in self.ctx.scheduler.drop_queued(lambda r: r.kind == "tool_followup"):
            request.handle._finish(interrupted=True)

    def add_user_item(self, item_id: str, text: str) -> MessageItem:
        ctx = self.ctx
        existing = ctx.history.get(item_id)
        if isinstance(existing, MessageItem):
            if text:
                existing.text = text
            return existing
        # Its place is where the provider committed it (now), so the history follows the
        # provider's order: a tool output sent while the caller was still talking is before
        # their turn in both (a sync then has nothing to move).
        item = MessageItem(id=item_id, role="user", text=text, created_at=ctx.clock.now())
        ctx.history.add(item, ctx.history.next_key())
        ctx.emit(ConversationItemAdded(item))
        return item

    async def _delete(self, item_id: str) -> None:
        """The server committed a backchannel as a turn: take it out of the conversation."""
        try:
            await self.ctx.provider.delete_item(item_id)
        except OperationError as exc:
            self.ctx.emit(
                ErrorEvent(
                    f"backchannel item {item_id} not deleted: {exc.message}",
                    code=exc.code,
                    operation="delete",
                )
            )

    async def _clear_input(self) -> None:
        """Local turns: drop the backchannel's audio from the provider's input buffer."""
        try:
            await self.ctx.provider.clear_audio()
        except OperationError as exc:
            self.ctx.emit(ErrorEvent(f"input clear failed: {exc.message}", code=exc.code))

    async def _commit_and_reply(self) -> None:
        speech_end = self.speech_end_at
        try:
            await self.ctx.provider.commit_audio()
        except OperationError as exc:
            self.ctx.emit(ErrorEvent(f"commit failed: {exc.message}", code=exc.code))
            return
        handle = SpeechHandle("reply")
        self.ctx.enqueue(ReplyRequest(kind="reply", handle=handle, user_speech_end_at=speech_end))

    async def _cancel(self, response_id: str) -> None:
        """Cancel a reply nobody will hear; one that already ended needs nothing."""
        try:
            await self.ctx.provider.cancel_response(response_id)
        except OperationError as exc:
            log.debug("cancel of %s not needed: %s", response_id, exc.message)

    def _resync(self) -> None:
        """Make the provider hold the heard history: at once when it does already (the usual
        case at a response's end: no task, #17), else in a task that sends the difference."""
        ctx = self.ctx
        if ctx.provider.sync_history_nowait(ctx.history.items()):
            self._release_resync_hold()
            self._resynced()
        else:
            ctx.owner.spawn(self._sync_history(), "resync-history")

    async def _sync_history(self) -> None:
        ctx = self.ctx
        try:
            await ctx.provider.sync_history(ctx.history.items())
        except OperationError as exc:
            ctx.emit(ErrorEvent(f"history re-sync failed: {exc.message}", code=exc.code))
        finally:
            self._release_resync_hold()
        self._resynced()

    def _release_resync_hold(self) -> None:
        if not self.core.resync_due:
            self.ctx.scheduler.release_hold(_RESYNC_HOLD)

    def _resynced(self) -> None:
        self.tell(
            Resynced(
                unanswered_turn=self._unanswered_user_turn() is not None,
                queue_empty=not self.ctx.scheduler.pending,
            )
        )

    def _unanswered_user_turn(self) -> MessageItem | None:
        """The last heard item, when it is a caller turn the provider can read (has text)."""
        last = self.ctx.history.last()
        if isinstance(last, MessageItem) and last.role == "user" and last.text.strip():
            return last
        return None

    def _request_reply(self, decision: RequestReply) -> None:
        """Ask for a reply the core decided on: for a turn the server refused to answer, or
        once after a reconnect for a lost answer (dropped if the floor changed by then)."""
        ctx = self.ctx
        speech_end, self.speech_end_at = self.speech_end_at, None
        if decision.reason == "refused_turn":
            handle = SpeechHandle("reply")
            ctx.enqueue(ReplyRequest(kind="reply", handle=handle, user_speech_end_at=speech_end))
            return
        log.info("answering the caller again after a reconnect (%s)", decision.reason)
        last = ctx.history.last()

        def still_wanted() -> bool:
            return not ctx.runs() and ctx.states.user != "speaking" and ctx.history.last() is last

        ctx.enqueue(
            ReplyRequest(
                kind="reply",
                handle=SpeechHandle("reply"),
                instructions=ctx.options.lost_reply_instructions
                if decision.continue_heard
                else None,
                user_speech_end_at=speech_end,
                still_wanted=still_wanted,
            )
        )

    # ------------------------------------------------------------------ interruption

    def interrupt(
        self, source: InterruptSource, cancel_provider: bool, *, force: bool = False
    ) -> bool:
        """Cut every response that still plays or generates (sink cleared first, at once).

        A reply being requested right now is cancelled too: it was asked for before the caller
        spoke and would otherwise start talking over them (the server only cancels responses
        that already exist). `force` cuts uninterruptible speech too (the app's `interrupt()`).
        """
        ctx = self.ctx
        targets = [run for run in ctx.runs() if run.may_still_play]
        inflight = ctx.scheduler.inflight
        if inflight is not None and (
            inflight.handle.interrupted or inflight.handle.response_id is not None
        ):
            inflight = None  # cut already, or its response runs (a target above)
        if not targets and inflight is None:
            return False
        protected = [run.allow_interruptions for run in targets]
        if inflight is not None:
            protected.append(inflight.handle.allow_interruptions)
        if not force and not all(protected):
            return False  # uninterruptible speech (a disclaimer, the greeting) keeps playing
        if ctx.transport.audio_out is not None:
            ctx.transport.audio_out.clear()
        for run in targets:
            run.interrupt(source, cancel_provider=cancel_provider)
        if inflight is not None:
            inflight.handle.interrupted = True
            ctx.owner.spawn(ctx.provider.cancel_response(), "cancel-requested-reply")
        ctx.states.interrupted()
        ctx.emit(Interrupted(source, tuple(run.response_id for run in targets), ctx.clock.now()))
        return True

    def _pause_playback(self) -> bool:
        """Hold the agent's audio while undecided caller speech runs (false-interruption
        resume); refused for uninterruptible speech and sinks that cannot pause."""
        sink = self.ctx.transport.audio_out
        targets = [run for run in self.ctx.runs() if run.may_still_play]
        if (
            sink is None
            or not sink.can_pause
            or not targets
            or not all(r.allow_interruptions for r in targets)
        ):
            return False
        sink.pause()
        return True

    def _resume_playback(self) -> None:
        if self.ctx.transport.audio_out is not None:
            self.ctx.transport.audio_out.resume()
