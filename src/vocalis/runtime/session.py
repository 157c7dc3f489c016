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
from vocalis.audio.vad import EnergyVAD
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
    ProviderConnected,
    ProviderReconnected,
    SessionClosedEvent,
    SessionEvent,
    ToolCallFinished,
    ToolCallStarted,
    TurnMetrics,
    UserState,
)
from vocalis.runtime.observe import ResponseView, SessionSnapshot
from vocalis.runtime.options import AgentSessionOptions
from vocalis.runtime.response import ResponseRun, RunContext
from vocalis.runtime.scheduler import ReplyRequest, ReplyScheduler
from vocalis.runtime.speech import SpeechHandle
from vocalis.runtime.states import StateTracker
from vocalis.runtime.tasks import TaskOwner
from vocalis.runtime.tool_executor import ToolExecutor, ToolRun
from vocalis.runtime.turn_driver import TurnContext, TurnDriver
from vocalis.runtime.turns import (
    CancelResponse,
    Closing,
    HistoryUnsynced,
    Reconnected,
    ResponseBegan,
    ResponseSettled,
    ServerReplyRefused,
    TurnConfig,
)
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
        self._vad: EnergyVAD | None = None
        # Turn-taking (the `turns` core and its shell): created with the provider in start().
        self._turns: TurnDriver | None = None
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
            request_resync=self._history_unsynced,
        )
        self._turns = TurnDriver(
            TurnContext(
                provider=provider,
                scheduler=self._scheduler,
                history=self._history,
                states=self._states,
                transport=self.transport,
                clock=self.clock,
                owner=self._owner,
                options=self.options,
                emit=self._emitter.emit,
                enqueue=self._enqueue,
                runs=lambda: list(self._runs.values()),
            ),
            TurnConfig(local_turns=self._local_turns, server_replies=self._server_replies),
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
        if self._turns is not None:
            self._turns.tell(Closing())
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
        return self._require_turns().interrupt("api", True, force=True) or bool(dropped)

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
        interruptions = self._turns.interruptions if self._turns is not None else None
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
            interruption_pending=bool(interruptions and interruptions.pending),
            false_interruptions=interruptions.false_interruptions if interruptions else 0,
            resumed_after_false_interruption=interruptions.resumed if interruptions else 0,
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

    @property
    def _server_replies(self) -> bool:
        """The provider answers a caller turn on its own (server VAD `create_response`)."""
        td = self.options.server_turn_detection
        return td is not None and td.create_response

    def _require_turns(self) -> TurnDriver:
        if self._turns is None:
            raise RuntimeError("AgentSession.start() has not been called")
        return self._turns

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
        turns = self._require_turns()
        match event:
            case GenerationStarted(generation=generation):
                self._on_generation(generation)
            case InputSpeechStarted():
                turns.server_speech_started(event)
            case InputSpeechStopped():
                turns.server_speech_stopped(event)
            case InputAudioCommitted(item_id=item_id):
                turns.committed(item_id)
            case InputTranscription():
                turns.transcription(event)
            case ProviderError():
                self._on_provider_error(event, turns)
            case SessionReconnected():
                self._emitter.emit(
                    ProviderReconnected(
                        event.reason, event.outage_s, len(event.replayed_item_ids), self.clock.now()
                    )
                )
                turns.timeline.reset()  # a new provider session counts input audio from zero
                turns.tell(Reconnected())
                # A reply request the drop interrupted is sent again now, not after a delay.
                self._require_scheduler().wake()
            case SessionClosed():
                self._close_reason = event.reason
                if event.error is not None:
                    self._emitter.emit(
                        ErrorEvent(event.error.message, code=event.error.code, recoverable=False)
                    )

    def _on_provider_error(self, event: ProviderError, turns: TurnDriver) -> None:
        self._emitter.emit(
            ErrorEvent(
                event.message,
                code=event.code,
                recoverable=not event.fatal,
                operation=event.operation,
            )
        )
        if event.kind is ErrorKind.BUSY and event.operation is None:
            # The server's own VAD reply collided with a response still running.
            turns.tell(ServerReplyRefused())
        if event.fatal and not self._closing:
            self._close_reason = f"fatal provider error: {event.code}"
            self._owner.spawn(self.aclose(), "close-on-fatal")

    def _on_generation(self, generation: Generation) -> None:
        scheduler = self._require_scheduler()
        if generation.response_id in self._runs:
            return
        scheduler.track(generation)
        if generation.request_id is not None and scheduler.inflight is not None:
            return  # ours: the scheduler starts its run with the request's options
        self._start_run(generation, None)

    def _start_run(self, generation: Generation, request: ReplyRequest | None) -> None:
        if generation.response_id in self._runs or self._ctx is None or self._turns is None:
            return
        turns = self._turns
        if request is None:
            handle = SpeechHandle("server")
            speech_end, turns.speech_end_at = turns.speech_end_at, None
            requested_at = None
        else:
            handle = request.handle
            speech_end = request.user_speech_end_at
            requested_at = request.queued_at
        decisions = turns.tell(ResponseBegan(generation.response_id, requested=request is not None))
        if CancelResponse(generation.response_id) in decisions:
            # The server answers a backchannel: cancelled before a frame plays; the ledger
            # deletes its items (never heard).
            handle.interrupted = True
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
        heard = any(isinstance(i, MessageItem) and i.text for i in run.handle.items)
        # The core re-syncs once nothing runs (a checkpoint: the provider replays exactly the
        # heard history after a reconnect; normally an empty diff) and owes a lost answer.
        self._require_turns().tell(
            ResponseSettled(run.response_id, owes_reply=run.owes_reply, heard_part=heard)
        )

    def _history_unsynced(self) -> None:
        """A run's tool output did not reach the provider: the history re-sync will put it
        there (after its call), and replies wait for that."""
        self._require_turns().tell(HistoryUnsynced())

    def _show_agent_state(self, event: AgentStateChanged) -> None:
        text_sink = self.transport.text_out
        if text_sink is not None:
            text_sink.agent_state(event.new)

    # ------------------------------------------------------------------ caller input

    async def _caller_audio(self, provider: RealtimeSession) -> None:
        rate = provider.capabilities.input_sample_rate
        ms_per_sample = 1000.0 / rate
        turns = self._require_turns()
        timeline = turns.timeline
        clock = self.clock
        vad = self._vad
        async for frame in self.transport.audio_in.frames(rate):
            samples = frame.samples
            provider.append_audio(samples)
            timeline.append(samples.shape[0] * ms_per_sample, clock.now())
            if vad is not None:
                for event in vad.process(samples):
                    turns.local_vad(event)

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
            self._require_turns().interrupt("text", True)
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
