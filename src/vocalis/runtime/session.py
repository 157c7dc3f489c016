"""`AgentSession`: an `Agent` talking to a caller through a realtime provider.

The session wires the parts and holds the few decisions that need all of them:

* provider events → user/agent states, user items in the history, and the start of a
  `ResponseRun` for every response (server VAD answers and our own requests alike);
* caller audio → provider (and a local VAD when the provider does not detect turns);
* interruptions → one `sink.clear()` and every running response stopped (`_interrupt`);
* replies → the `ReplyScheduler` (one active response at a time).

Each response's playout, tools, ledger and follow-up live in `response.py`; states are derived
in `states.py`; every background task belongs to the session's `TaskOwner`, so after
`aclose()` nothing the session started is still running.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from vocalis import telemetry
from vocalis.audio.vad import EnergyVAD, VADEvent
from vocalis.conversation.history import History
from vocalis.conversation.items import ConversationItem, MessageItem
from vocalis.providers.base import (
    ErrorKind,
    Generation,
    GenerationStarted,
    InputAudioCommitted,
    InputSpeechStarted,
    InputSpeechStopped,
    InputTranscription,
    OperationError,
    ProviderError,
    ProviderEvent,
    RealtimeModel,
    RealtimeSession,
    SessionClosed,
    SessionOptions,
    SessionReconnected,
)
from vocalis.runtime.agent import Agent
from vocalis.runtime.context import ToolContext
from vocalis.runtime.events import (
    AgentState,
    AgentStateChanged,
    ConversationItemAdded,
    E,
    ErrorEvent,
    EventEmitter,
    Interrupted,
    InterruptSource,
    ProviderConnected,
    ProviderReconnected,
    SessionClosedEvent,
    SessionEvent,
    ToolCallFinished,
    ToolCallStarted,
    TurnMetrics,
    UserState,
    UserTranscript,
)
from vocalis.runtime.interruption import InterruptionController
from vocalis.runtime.metrics import InputTimeline
from vocalis.runtime.observe import ResponseView, SessionSnapshot
from vocalis.runtime.options import AgentSessionOptions
from vocalis.runtime.response import ResponseRun, RunContext
from vocalis.runtime.scheduler import ReplyRequest, ReplyScheduler
from vocalis.runtime.speech import SpeechHandle
from vocalis.runtime.states import StateTracker
from vocalis.runtime.tasks import TaskOwner
from vocalis.runtime.tool_executor import ToolExecutor, ToolRun
from vocalis.transports.base import Transport
from vocalis.utils.clock import Clock, MonotonicClock

log = logging.getLogger(__name__)


class AgentSession:
    """Runs one conversation; see docs/runtime.md for the API and docs/heard-contract.md."""

    def __init__(
        self,
        provider: RealtimeModel | RealtimeSession,
        transport: Transport,
        *,
        clock: Clock | None = None,
        options: AgentSessionOptions | None = None,
    ) -> None:
        self._model = provider if isinstance(provider, RealtimeModel) else None
        self._given_session = provider if isinstance(provider, RealtimeSession) else None
        self.transport = transport
        self.clock: Clock = clock or MonotonicClock()
        self.options = options or AgentSessionOptions()
        self._emitter = EventEmitter(self.options.event_log_limit)
        # Per-turn metrics belong to the saved history, so they are kept on their own rather
        # than read back from the (bounded) event log.
        self._turn_metrics: list[TurnMetrics] = []
        self._emitter.on(TurnMetrics, self._turn_metrics.append)
        # The transport's display (the playground's state badge) follows the agent state.
        self._emitter.on(AgentStateChanged, self._show_agent_state)
        self._owner = TaskOwner("session", on_error=self._task_failed)
        self._history = History()
        self._states = StateTracker(self.clock, self._emitter.emit, self._emitter.emit)
        self._executor = ToolExecutor(
            self._owner,
            self.clock,
            on_started=self._tool_started,
            on_finished=self._tool_finished,
            context=lambda run: ToolContext(self, call_id=run.call_id, tool_name=run.name),
        )
        self._provider: RealtimeSession | None = None
        self._scheduler: ReplyScheduler | None = None
        self._ctx: RunContext | None = None
        self._agent: Agent | None = None
        self._runs: dict[str, ResponseRun] = {}
        self._response_watchers: list[Callable[[ResponseRun], None]] = []
        self._timeline = InputTimeline()
        self._vad: EnergyVAD | None = None
        self._user_speech_end_at: float | None = None
        self._expect_timer: asyncio.Task[None] | None = None
        self._interruptions = InterruptionController(
            self.options.interruption,
            self.clock,
            self._owner,
            self._interrupt,
            agent_speaking=lambda: self._states.agent == "speaking",
            pause=self._pause_playback,
            resume=self._resume_playback,
        )
        # Backchannels ("mhm" over the agent) are kept out of the conversation: their
        # committed items (server VAD) and the reply the server may start for one.
        self._backchannel_items: set[str] = set()
        self._swallow_reply = False
        self._resync_needed = False
        # Set by a reconnect: once re-synced, answer a caller turn whose reply died with it.
        self._check_lost_turn = False
        # A response died with its connection before it finished (not a barge-in): once
        # re-synced, the caller is answered on the new connection — once (`_answer_lost_turn`).
        self._reply_owed: ResponseRun | None = None
        self._closing = False
        self._closed = asyncio.Event()
        self._close_reason = "closed"
        # Traces and metrics observe the events above; with telemetry off this does nothing.
        telemetry.attach(self)

    # ================================================================== lifecycle

    async def start(self, agent: Agent) -> None:
        """Connect (if given a model), apply the agent, and start listening."""
        if self._provider is not None:
            raise RuntimeError("AgentSession already started")
        self._agent = agent
        self._executor.set_tools(agent.tools)
        session_options = self._session_options(agent, first=True)
        connect_started = self.clock.now()
        if self._model is not None:
            provider = await self._model.connect(session_options)
        else:
            assert self._given_session is not None
            provider = self._given_session
            await provider.update_options(session_options)
        self._provider = provider
        now = self.clock.now()
        self._emitter.emit(ProviderConnected(type(provider).__name__, now - connect_started, now))
        caps = provider.capabilities
        if self._local_turns:
            vad = self.options.local_vad
            self._vad = EnergyVAD(
                caps.input_sample_rate,
                threshold_db=vad.threshold_db,
                min_speech_ms=vad.min_speech_ms,
                min_silence_ms=vad.min_silence_ms,
            )
        self._scheduler = ReplyScheduler(
            provider,
            self.clock,
            start_run=self._start_run,
            on_error=self._reply_failed,
            on_queue_changed=lambda n: self._states.set_busy("queue", n > 0),
        )
        self._ctx = RunContext(
            provider=provider,
            clock=self.clock,
            owner=self._owner,
            sink=self.transport.audio_out,
            text_sink=self.transport.text_out,
            states=self._states,
            history=self._history,
            executor=self._executor,
            scheduler=self._scheduler,
            options=self.options,
            emit=self._emitter.emit,
            sample_rate=caps.output_sample_rate,
            on_settled=self._run_settled,
            request_resync=self._need_resync,
        )
        self._owner.spawn(self._provider_events(provider), "provider-events")
        self._owner.spawn(self._caller_audio(provider), "caller-audio")
        self._owner.spawn(self._scheduler.run(), "scheduler")
        text_in = self.transport.text_in()
        if text_in is not None:
            self._owner.spawn(self._caller_text(text_in), "caller-text")
        self._states.start()
        if agent.greeting:
            self.say(agent.greeting, allow_interruptions=False)

    async def aclose(self) -> None:
        """Stop everything this session started; idempotent."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        if self._scheduler is not None:
            for request in self._scheduler.drop_queued(lambda _r: True):
                request.handle._finish(interrupted=True)
        # Runs cut short by the close still put what the caller heard into the history.
        unsettled = list(self._runs.values())
        if self.transport.audio_out is not None:
            self.transport.audio_out.clear()
        await self._owner.aclose()
        for run in unsettled:
            await run.settle_on_close()
        if self._model is not None and self._provider is not None:
            await self._provider.aclose()
        self._states.close()
        self._emitter.emit(SessionClosedEvent(self._close_reason))
        self._emitter.close()
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    async def __aenter__(self) -> AgentSession:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ================================================================== public API

    def generate_reply(
        self, *, instructions: str | None = None, tool_choice: str | None = None
    ) -> SpeechHandle:
        """Ask the model to respond now (queued while another response is active)."""
        handle = SpeechHandle("reply")
        self._enqueue(
            ReplyRequest(
                kind="reply", handle=handle, instructions=instructions, tool_choice=tool_choice
            )
        )
        return handle

    def say(self, text: str, *, allow_interruptions: bool = True) -> SpeechHandle:
        """Speak `text` through the provider's own voice.

        Realtime models have no "speak this verbatim" call, so this requests a response with
        the instructions `options.say_instructions` ("Say exactly: <text>") and no tools. The
        model may still paraphrase; the history records what it actually said, as heard.
        """
        handle = SpeechHandle("say", allow_interruptions=allow_interruptions)
        self._enqueue(
            ReplyRequest(
                kind="say",
                handle=handle,
                instructions=self.options.say_instructions.format(text=text),
                tool_choice="none",
            )
        )
        return handle

    def interrupt(self) -> bool:
        """Stop the agent now (also uninterruptible speech): clear audio, cancel, settle.

        Queued replies are dropped. Returns whether anything was playing or generating.
        """
        scheduler = self._require_scheduler()
        dropped = scheduler.drop_queued(lambda r: r.kind in ("reply", "say", "tool_followup"))
        for request in dropped:
            request.handle._finish(interrupted=True)
        return self._interrupt("api", True, force=True) or bool(dropped)

    async def update_agent(self, agent: Agent) -> None:
        """Switch instructions and tools live (a hand-off); the heard history carries over."""
        provider = self._require_provider()
        self._agent = agent
        self._executor.set_tools(agent.tools)
        await provider.update_options(self._session_options(agent, first=False))

    @property
    def agent(self) -> Agent | None:
        return self._agent

    @property
    def history(self) -> list[ConversationItem]:
        """The conversation as the caller heard it, in conversation order."""
        return self._history.items()

    def history_json(self) -> dict[str, Any]:
        """JSON-serializable history plus per-turn metrics (the CLI writes this)."""
        data = self._history.to_json()
        data["metrics"] = [event.to_json() for event in self._turn_metrics]
        return data

    @property
    def agent_state(self) -> AgentState:
        return self._states.agent

    @property
    def user_state(self) -> UserState:
        return self._states.user

    @property
    def agent_states(self) -> list[AgentState]:
        """Every agent state entered so far, in order."""
        return list(self._states.history)

    @property
    def tool_runs(self) -> list[ToolRun]:
        return self._executor.runs

    @property
    def responses(self) -> list[ResponseRun]:
        """Responses started and not yet settled, in start order (read-only use)."""
        return list(self._runs.values())

    def on_response(self, callback: Callable[[ResponseRun], None]) -> Callable[[], None]:
        """Call `callback` with every response as it starts; returns an unsubscribe function."""
        self._response_watchers.append(callback)
        return lambda: self._response_watchers.remove(callback)

    def snapshot(self) -> SessionSnapshot:
        """What the session is doing right now (see `SessionSnapshot`)."""
        scheduler = self._scheduler
        return SessionSnapshot(
            agent_state=self._states.agent,
            user_state=self._states.user,
            responses=tuple(
                ResponseView(r.response_id, r.handle.kind, r.phase, r.stop, r.interrupt_source)
                for r in self._runs.values()
            ),
            queued_replies=scheduler.queued if scheduler is not None else 0,
            requesting=scheduler is not None and scheduler.inflight is not None,
            resync_pending=scheduler is not None and scheduler.held,
            interruption_pending=self._interruptions.pending,
            false_interruptions=self._interruptions.false_interruptions,
            resumed_after_false_interruption=self._interruptions.resumed,
        )

    @property
    def provider(self) -> RealtimeSession | None:
        return self._provider

    @property
    def event_log(self) -> list[SessionEvent]:
        return list(self._emitter.log)

    def on(self, kind: type[E], callback: Callable[[E], None]) -> Callable[[], None]:
        """Subscribe to one event type; returns an unsubscribe function."""
        return self._emitter.on(kind, callback)

    def events(self) -> AsyncIterator[SessionEvent]:
        """Every event from now on, until the session closes."""
        return self._emitter.stream()

    # ================================================================== internals: setup

    @property
    def _local_turns(self) -> bool:
        caps = self._provider.capabilities if self._provider is not None else None
        return self.options.server_turn_detection is None or (
            caps is not None and not caps.server_vad
        )

    def _session_options(self, agent: Agent, *, first: bool) -> SessionOptions:
        audio_out = self.transport.audio_out is not None
        return SessionOptions(
            instructions=agent.instructions,
            voice=agent.voice if first else None,
            output_modalities=("audio",) if audio_out else ("text",),
            turn_detection=self.options.server_turn_detection,
            input_transcription_model=self.options.input_transcription_model,
            tools=agent.tool_specs,
        )

    def _require_provider(self) -> RealtimeSession:
        if self._provider is None:
            raise RuntimeError("AgentSession.start() has not been called")
        return self._provider

    def _require_scheduler(self) -> ReplyScheduler:
        if self._scheduler is None:
            raise RuntimeError("AgentSession.start() has not been called")
        return self._scheduler

    def _enqueue(self, request: ReplyRequest) -> None:
        if self._closing:
            request.handle._finish(error=RuntimeError("session closed"))
            return
        self._require_scheduler().enqueue(request)

    # ================================================================== provider events

    async def _provider_events(self, provider: RealtimeSession) -> None:
        async for event in provider.events():
            self._on_provider_event(event)
            if isinstance(event, SessionClosed):
                break
        if not self._closing:
            self._close_reason = "provider closed"
            await self.aclose()

    def _on_provider_event(self, event: ProviderEvent) -> None:
        if isinstance(event, GenerationStarted):
            self._on_generation(event.generation)
        elif isinstance(event, InputSpeechStarted):
            self._on_speech_started(event.item_id, "server_vad", self._speech_onset_ms(event))
        elif isinstance(event, InputSpeechStopped):
            voice_end_ms = self._speech_end_ms(event)
            self._on_speech_stopped(
                self._timeline.clock_time_of(voice_end_ms), voice_end_ms, event.item_id
            )
        elif isinstance(event, InputAudioCommitted):
            if event.item_id in self._backchannel_items:
                self._owner.spawn(self._delete_backchannel(event.item_id), "drop-backchannel")
            else:
                self._add_user_item(event.item_id, "")
        elif isinstance(event, InputTranscription):
            self._on_transcription(event)
        elif isinstance(event, ProviderError):
            self._emitter.emit(
                ErrorEvent(
                    event.message,
                    code=event.code,
                    recoverable=not event.fatal,
                    operation=event.operation,
                )
            )
            busy = event.kind is ErrorKind.BUSY and event.operation is None
            if busy and self._swallow_reply:
                self._swallow_reply = False  # the server's reply to a backchannel: not wanted
            elif busy and self._expects_server_reply():
                # The server's own VAD reply to the caller's turn collided with a response
                # still running (`interrupt_response=False`): answer the turn once idle.
                self._enqueue(
                    ReplyRequest(
                        kind="reply",
                        handle=SpeechHandle("reply"),
                        user_speech_end_at=self._user_speech_end_at,
                    )
                )
            if event.fatal and not self._closing:
                self._close_reason = f"fatal provider error: {event.code}"
                self._owner.spawn(self.aclose(), "close-on-fatal")
        elif isinstance(event, SessionReconnected):
            self._emitter.emit(
                ProviderReconnected(
                    event.reason, event.outage_s, len(event.replayed_item_ids), self.clock.now()
                )
            )
            # A new provider session counts input audio from zero again.
            self._timeline.reset()
            self._check_lost_turn = True
            self._need_resync()
            # A reply request the drop interrupted is sent again now, not after a delay.
            self._require_scheduler().wake()
        elif isinstance(event, SessionClosed):
            self._close_reason = event.reason
            if event.error is not None:
                self._emitter.emit(
                    ErrorEvent(event.error.message, code=event.error.code, recoverable=False)
                )

    def _on_generation(self, generation: Generation) -> None:
        scheduler = self._require_scheduler()
        if generation.response_id in self._runs:
            return
        scheduler.track(generation)
        if generation.request_id is not None and scheduler.inflight is not None:
            return  # ours: the scheduler starts its run with the request's options
        self._start_run(generation, None)

    def _start_run(self, generation: Generation, request: ReplyRequest | None) -> None:
        if generation.response_id in self._runs or self._ctx is None:
            return
        if request is None:
            handle = SpeechHandle("server")
            speech_end, self._user_speech_end_at = self._user_speech_end_at, None
            requested_at = None
            if self._swallow_reply and self._provider is not None:
                # The server answers a backchannel: cancel it before a frame plays; the
                # ledger deletes its items (never heard).
                self._swallow_reply = False
                handle.interrupted = True
                self._owner.spawn(
                    self._cancel_quietly(self._provider, generation.response_id),
                    "cancel-backchannel-reply",
                )
        else:
            handle = request.handle
            speech_end = request.user_speech_end_at
            requested_at = request.queued_at
        run = ResponseRun(
            self._ctx,
            generation,
            handle=handle,
            order_key=self._history.next_key(),
            user_speech_end_at=speech_end,
            requested_at=requested_at,
        )
        self._runs[generation.response_id] = run
        for watcher in list(self._response_watchers):
            watcher(run)
        self._owner.spawn(run.run(), f"response:{generation.response_id}")

    def _run_settled(self, run: ResponseRun) -> None:
        self._runs.pop(run.response_id, None)
        if run.owes_reply and not self._closing:
            self._reply_owed = run
        if not self._runs and not self._closing:
            # Checkpoint: tell the provider what was heard (it replays exactly this after a
            # reconnect); a minimal diff, normally empty because the ledger already applied
            # every truncate/delete.
            self._need_resync()
        self._maybe_resync()

    def _need_resync(self) -> None:
        """The provider must be brought to the heard history before anything else is asked.

        Replies wait for it (the scheduler is held): a follow-up must not reach the provider
        before the tool output it is about, nor a lost turn's answer before its history.
        """
        if self._closing or self._scheduler is None:
            return
        self._resync_needed = True
        self._scheduler.hold("resync")
        self._maybe_resync()

    def _maybe_resync(self) -> None:
        """Make the provider's memory equal the heard history, once no response runs."""
        if not self._resync_needed or self._runs or self._provider is None or self._closing:
            return
        self._resync_needed = False
        self._owner.spawn(self._resync(self._provider), "resync-history")

    async def _resync(self, provider: RealtimeSession) -> None:
        try:
            await provider.sync_history(self._history.items())
        except OperationError as exc:
            self._emitter.emit(ErrorEvent(f"history re-sync failed: {exc.message}", code=exc.code))
        finally:
            if not self._resync_needed and self._scheduler is not None:
                self._scheduler.release_hold("resync")
        if self._check_lost_turn or self._reply_owed is not None:
            self._check_lost_turn = False
            self._answer_lost_turn()

    def _unanswered_user_turn(self) -> MessageItem | None:
        """The last heard item, when it is a caller turn the provider can read (has text)."""
        items = self._history.items()
        last = items[-1] if items else None
        if isinstance(last, MessageItem) and last.role == "user" and last.text.strip():
            return last
        return None

    def _answer_lost_turn(self) -> None:
        """After a reconnect: answer the caller once if their answer died with the old socket.

        Two ways to lose it. A response died before it finished (`ResponseRun.owes_reply`:
        the caller heard part of it or nothing, and no tool follow-up will speak for it) —
        a disconnect is not a barge-in, nobody took the floor. Or the drop came right before
        `response.created` of the server's reply to a committed turn: no run exists, the new
        session holds the turn (replayed as text) and nobody asks for the answer; then the
        reply is requested only when the last heard item is that turn (never when the caller
        heard an answer) and only when vocalis answers turns (server VAD with
        `create_response`, or local turns). A turn without a transcript is not re-answered:
        the new session cannot read it. Either way: only while nothing else runs or is queued
        and the caller is not speaking (their new turn gets the answer), and dropped if that
        changed by the time it would be sent.
        """
        scheduler = self._scheduler
        owed, self._reply_owed = self._reply_owed, None
        if scheduler is None or self._closing or self._runs or scheduler.pending:
            return
        if self._states.user == "speaking":
            return
        instructions: str | None = None
        if owed is not None:
            if any(isinstance(i, MessageItem) and i.text for i in owed.handle.items):
                instructions = self.options.lost_reply_instructions
            log.info("answering again: response %s was lost with the connection", owed.response_id)
        elif self._local_turns or self._expects_server_reply():
            if self._unanswered_user_turn() is None:
                return
            log.info("answering the caller's last turn: its reply was lost in a reconnect")
        else:
            return
        items = self._history.items()
        last = items[-1] if items else None

        def still_wanted() -> bool:
            now = self._history.items()
            return (
                not self._runs
                and self._states.user != "speaking"
                and (now[-1] if now else None) is last
            )

        speech_end, self._user_speech_end_at = self._user_speech_end_at, None
        self._enqueue(
            ReplyRequest(
                kind="reply",
                handle=SpeechHandle("reply"),
                instructions=instructions,
                user_speech_end_at=speech_end,
                still_wanted=still_wanted,
            )
        )

    # ------------------------------------------------------------------ caller turns

    def _on_speech_started(
        self, item_id: str | None, source: InterruptSource, onset_ms: float
    ) -> None:
        self._states.set_user("speaking")
        self._swallow_reply = False
        self._reply_owed = None  # the caller's new turn gets the answer
        self._set_expect_reply(False)
        # The caller takes the floor: their turn gets the answer (the tool outputs are in the
        # conversation by then), not a tool follow-up queued before they spoke.
        for run in self._runs.values():
            if run.playout_finished:
                run.cancel_follow_up()
        for request in self._require_scheduler().drop_queued(lambda r: r.kind == "tool_followup"):
            request.handle._finish(interrupted=True)
        td = self.options.server_turn_detection
        provider_cancels = (
            source == "server_vad"
            and td is not None
            and td.interrupt_response
            and self._require_provider().capabilities.server_interrupts_response
        )
        self._interruptions.speech_started(
            source,
            provider_cancels=provider_cancels,
            onset_ms=onset_ms,
            silence_s=self._silence_window_ms() / 1000.0,
        )

    def _silence_window_ms(self) -> float:
        """How long after the voice stops its end is reported (the VAD's silence window)."""
        td = self.options.server_turn_detection
        if self._local_turns or td is None:
            return self.options.local_vad.min_silence_ms
        return td.silence_duration_ms if td.silence_duration_ms is not None else 500.0

    def _speech_onset_ms(self, event: InputSpeechStarted) -> float:
        """Where the caller's voice started: OpenAI's `audio_start_ms` includes the prefix
        padding (default 300 ms) before the detected onset."""
        td = self.options.server_turn_detection
        padding = 300 if td is None or td.prefix_padding_ms is None else td.prefix_padding_ms
        return event.audio_start_ms + padding

    def _pause_playback(self) -> bool:
        """Hold the agent's audio while undecided caller speech runs (false-interruption
        resume); refused for uninterruptible speech and sinks that cannot pause."""
        sink = self.transport.audio_out
        targets = [run for run in self._runs.values() if run.may_still_play]
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
        if self.transport.audio_out is not None:
            self.transport.audio_out.resume()

    async def _delete_backchannel(self, item_id: str) -> None:
        """The server committed a backchannel as a turn: take it out of the conversation."""
        self._backchannel_items.discard(item_id)
        try:
            await self._require_provider().delete_item(item_id)
        except OperationError as exc:
            self._emitter.emit(
                ErrorEvent(
                    f"backchannel item {item_id} not deleted: {exc.message}",
                    code=exc.code,
                    operation="delete",
                )
            )

    @staticmethod
    async def _cancel_quietly(provider: RealtimeSession, response_id: str) -> None:
        """Cancel a reply nobody will hear; one that already ended needs nothing."""
        try:
            await provider.cancel_response(response_id)
        except OperationError as exc:
            log.debug("cancel of %s not needed: %s", response_id, exc.message)

    async def _clear_backchannel(self) -> None:
        """Local turns: drop the backchannel's audio from the provider's input buffer."""
        try:
            await self._require_provider().clear_audio()
        except OperationError as exc:
            self._emitter.emit(ErrorEvent(f"input clear failed: {exc.message}", code=exc.code))

    def _speech_end_ms(self, event: InputSpeechStopped) -> float:
        """Where the caller's voice ended in the input stream.

        OpenAI's `audio_end_ms` for server VAD includes the silence window that confirmed the
        end (`silence_duration_ms`, default 500); latency is measured from the voice's end.
        """
        td = self.options.server_turn_detection
        if td is None or td.type != "server_vad":
            return event.audio_end_ms
        silence = td.silence_duration_ms if td.silence_duration_ms is not None else 500
        return max(0.0, event.audio_end_ms - silence)

    def _expects_server_reply(self) -> bool:
        td = self.options.server_turn_detection
        return td is not None and td.create_response

    def _on_speech_stopped(
        self, speech_end_at: float | None, voice_end_ms: float, item_id: str | None
    ) -> bool:
        """The caller stopped talking; True when it was a backchannel (not a turn)."""
        self._states.set_user("listening")
        if self._interruptions.speech_stopped(voice_end_ms):
            if item_id is not None:
                self._backchannel_items.add(item_id)
            self._swallow_reply = self._expects_server_reply()
            return True
        self._user_speech_end_at = speech_end_at if speech_end_at is not None else self.clock.now()
        if self._expects_server_reply():
            self._set_expect_reply(True)
        return False

    def _set_expect_reply(self, expected: bool) -> None:
        """`thinking` from the end of the caller's turn until the response starts (bounded)."""
        if self._expect_timer is not None and not self._expect_timer.done():
            self._expect_timer.cancel()
        self._expect_timer = None
        self._states.expect_reply(expected)
        if expected and not self._closing:
            self._expect_timer = self._owner.spawn(self._expire_expectation(), "expect-reply")

    async def _expire_expectation(self) -> None:
        await self.clock.sleep(self.options.stall_timeout_s)
        self._states.expect_reply(False)

    def _add_user_item(self, item_id: str, text: str) -> MessageItem:
        existing = self._history.get(item_id)
        if isinstance(existing, MessageItem):
            if text:
                existing.text = text
            return existing
        # Its place is where the provider committed it (now), so the history follows the
        # provider's order: a tool output sent while the caller was still talking is before
        # their turn in both (a sync then has nothing to move).
        item = MessageItem(id=item_id, role="user", text=text, created_at=self.clock.now())
        self._history.add(item, self._history.next_key())
        self._emitter.emit(ConversationItemAdded(item))
        return item

    def _show_agent_state(self, event: AgentStateChanged) -> None:
        text_sink = self.transport.text_out
        if text_sink is not None:
            text_sink.agent_state(event.new)

    def _on_transcription(self, event: InputTranscription) -> None:
        if event.item_id in self._backchannel_items:
            return  # not part of the conversation
        self._emitter.emit(UserTranscript(event.item_id, event.text, event.final))
        text_sink = self.transport.text_out
        if text_sink is not None:
            text_sink.user_transcript(event.item_id, event.text, event.final)
        if event.final:
            self._add_user_item(event.item_id, event.text)

    # ------------------------------------------------------------------ interruption

    def _interrupt(
        self, source: InterruptSource, cancel_provider: bool, *, force: bool = False
    ) -> bool:
        """Cut every response that still plays or generates (sink cleared first, at once).

        A reply being requested right now is cancelled too: it was asked for before the caller
        spoke and would otherwise start talking over them (the server only cancels responses
        that already exist).
        """
        targets = [run for run in self._runs.values() if run.may_still_play]
        scheduler = self._require_scheduler()
        inflight = scheduler.inflight
        if inflight is not None and inflight.handle.interrupted:
            inflight = None
        if not targets and inflight is None:
            return False
        protected = [run.allow_interruptions for run in targets]
        if inflight is not None:
            protected.append(inflight.handle.allow_interruptions)
        if not force and not all(protected):
            return False  # uninterruptible speech (a disclaimer, the greeting) keeps playing
        if self.transport.audio_out is not None:
            self.transport.audio_out.clear()
        for run in targets:
            run.interrupt(source, cancel_provider=cancel_provider)
        if inflight is not None and self._provider is not None:
            inflight.handle.interrupted = True
            self._owner.spawn(self._provider.cancel_response(), "cancel-requested-reply")
        self._states.interrupted()
        self._emitter.emit(
            Interrupted(source, tuple(run.response_id for run in targets), self.clock.now())
        )
        return True

    # ------------------------------------------------------------------ caller input

    async def _caller_audio(self, provider: RealtimeSession) -> None:
        rate = provider.capabilities.input_sample_rate
        ms_per_sample = 1000.0 / rate
        timeline = self._timeline
        clock = self.clock
        vad = self._vad
        async for frame in self.transport.audio_in.frames(rate):
            samples = frame.samples
            provider.append_audio(samples)
            timeline.append(samples.shape[0] * ms_per_sample, clock.now())
            if vad is not None:
                for event in vad.process(samples):
                    self._on_local_vad(event)

    def _on_local_vad(self, event: VADEvent) -> None:
        """Client-side turn taking: interrupt on speech, commit + reply at its end."""
        if event.kind == "speech_started":
            self._on_speech_started(None, "local_vad", event.onset_ms)
            return
        speech_end = self._timeline.clock_time_of(event.onset_ms)
        if self._on_speech_stopped(speech_end, event.onset_ms, None):
            # A backchannel over the agent: no turn, and its audio must not open the next one.
            self._owner.spawn(self._clear_backchannel(), "clear-backchannel")
            return
        self._owner.spawn(self._commit_and_reply(speech_end), "local-turn")

    async def _commit_and_reply(self, speech_end: float | None) -> None:
        provider = self._require_provider()
        try:
            await provider.commit_audio()
        except OperationError as exc:
            self._emitter.emit(ErrorEvent(f"commit failed: {exc.message}", code=exc.code))
            return
        handle = SpeechHandle("reply")
        self._enqueue(ReplyRequest(kind="reply", handle=handle, user_speech_end_at=speech_end))

    async def _caller_text(self, text_in: AsyncIterator[str]) -> None:
        provider = self._require_provider()
        count = 0
        async for text in text_in:
            count += 1
            local_id = f"vc_typed_{count}"
            item = MessageItem(id=local_id, role="user", text=text, created_at=self.clock.now())
            key = self._history.next_key()
            try:
                item.id = await provider.create_item(item)
            except OperationError as exc:
                self._emitter.emit(ErrorEvent(f"typed message rejected: {exc.message}"))
                continue
            self._history.add(item, key)
            self._emitter.emit(ConversationItemAdded(item))
            self._interrupt("text", True)
            self.generate_reply()

    # ------------------------------------------------------------------ tools / errors

    def _tool_started(self, run: ToolRun) -> None:
        self._emitter.emit(ToolCallStarted(run.call_id, run.name, run.arguments, run.response_id))

    def _tool_finished(self, run: ToolRun) -> None:
        result = run.result
        assert result is not None
        duration = (run.finished_at or run.started_at) - run.started_at
        self._emitter.emit(
            ToolCallFinished(
                run.call_id, run.name, result.output, result.is_error, duration, run.response_id
            )
        )

    def _reply_failed(self, request: ReplyRequest, error: OperationError) -> None:
        self._emitter.emit(
            ErrorEvent(
                f"{request.kind} could not start: {error.message}",
                code=error.code,
                operation="response.create",
            )
        )

    def _task_failed(self, name: str, error: BaseException) -> None:
        log.error("session task %s failed", name, exc_info=error)
        self._emitter.emit(
            ErrorEvent(f"{name} failed: {type(error).__name__}: {error}", source="runtime")
        )
