"""`AgentSession`: an `Agent` talking to a caller through a realtime provider.

A thin coordinator: it owns the parts and routes between them. Turn-taking decisions are the
pure core in `turns.py` (its asyncio shell: `turn_driver.py`); each response's playout,
tools, ledger and follow-up live in `response.py`, the running ones in `responses.py`; the
reply scheduler keeps one response active; `wiring.py` puts the parts together once the
provider is connected. Every background task belongs to the session's `TaskOwner`, so after
`aclose()` nothing the session started is still running.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from vocalis import telemetry
from vocalis.audio.vad import EnergyVAD
from vocalis.conversation.history import History
from vocalis.conversation.items import ConversationItem
from vocalis.providers.base import (
    GenerationStarted,
    ProviderError,
    ProviderEvent,
    RealtimeModel,
    RealtimeSession,
    SessionClosed,
    SessionReconnected,
)
from vocalis.runtime.agent import Agent
from vocalis.runtime.budget import DEFAULT_BUDGET
from vocalis.runtime.call_end import CallEnd, EndCause
from vocalis.runtime.caller_input import TypedMessages, follow_caller_audio
from vocalis.runtime.closing import settle_on_close
from vocalis.runtime.context import ToolContext
from vocalis.runtime.events import (
    AgentState,
    AgentStateChanged,
    E,
    ErrorEvent,
    EventEmitter,
    ProviderConnected,
    ProviderReconnected,
    SavedTurn,
    SessionClosedEvent,
    SessionEvent,
    TurnMetrics,
    UserState,
)
from vocalis.runtime.observe import SessionSnapshot
from vocalis.runtime.options import AgentSessionOptions
from vocalis.runtime.response import ResponseRun, RunContext
from vocalis.runtime.responses import RESPONSE_BUDGET_CODE, ResponseTable
from vocalis.runtime.scheduler import ReplyRequest, ReplyScheduler
from vocalis.runtime.speech import SpeechHandle
from vocalis.runtime.states import StateTracker
from vocalis.runtime.tasks import TaskOwner
from vocalis.runtime.tool_executor import ToolExecutor, ToolRun
from vocalis.runtime.turn_driver import TurnDriver
from vocalis.runtime.turn_record import TurnRecord
from vocalis.runtime.turns import (
    Closing,
)
from vocalis.runtime.wiring import (
    SessionParts,
    session_options,
    snapshot_of,
    tool_events,
    turn_config,
    wire,
)
from vocalis.transports.base import Transport
from vocalis.utils.clock import Clock, MonotonicClock
from vocalis.utils.flag import Flag

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
        self._emitter = EventEmitter(self.options.event_log_limit, self.options.event_log_bytes)
        # Per-turn metrics belong to the saved history, so they are kept on their own rather
        # than read back from the (bounded) event log — and only what the history's JSON has:
        # recent turns in full, every turn in the aggregates (a peer decides how many).
        self._turn_record = TurnRecord(DEFAULT_BUDGET.max_kept_turns)
        self._emitter.on(TurnMetrics, lambda event: self._turn_record.add(SavedTurn.of(event)))
        # The transport's display (the playground's state badge) follows the agent state.
        self._emitter.on(AgentStateChanged, self._show_agent_state)
        self._owner = TaskOwner("session", on_error=self._task_failed)
        self._history = History()
        self._states = StateTracker(self.clock, self._emitter.emit, self._emitter.emit)
        on_started, on_finished = tool_events(self._emitter.emit)
        self._executor = ToolExecutor(
            self._owner,
            self.clock,
            on_started=on_started,
            on_finished=on_finished,
            context=lambda run: ToolContext(self, call_id=run.call_id, tool_name=run.name),
        )
        self._provider: RealtimeSession | None = None
        self._scheduler: ReplyScheduler | None = None
        self._ctx: RunContext | None = None
        self._agent: Agent | None = None
        self._responses = ResponseTable(on_over_bound=self._over_response_bound)
        self._parts = SessionParts(
            transport=transport,
            clock=self.clock,
            options=self.options,
            owner=self._owner,
            history=self._history,
            states=self._states,
            executor=self._executor,
            responses=self._responses,
            emit=self._emitter.emit,
            enqueue=self._enqueue,
        )
        self._vad: EnergyVAD | None = None
        # Turn-taking (the `turns` core and its shell): created with the provider in start().
        self._turns: TurnDriver | None = None
        self._closing = False
        self._closed = Flag()
        # Why the session ended: the first cause recorded wins (see `call_end.py`).
        self._end: CallEnd | None = None
        # Traces and metrics observe the events above; with telemetry off this does nothing.
        telemetry.attach(self)

    # ================================================================== lifecycle

    async def start(self, agent: Agent) -> None:
        """Connect (if given a model), apply the agent, and start listening."""
        if self._provider is not None:
            raise RuntimeError("AgentSession already started")
        self._agent = agent
        self._executor.set_tools(agent.tools)
        first_options = session_options(agent, self.options, self.transport, first=True)
        connect_started = self.clock.now()
        if self._model is not None:
            provider = await self._model.connect(first_options)
        else:
            assert self._given_session is not None
            provider = self._given_session
            await provider.update_options(first_options)
        self._provider = provider
        now = self.clock.now()
        self._emitter.emit(ProviderConnected(type(provider).__name__, now - connect_started, now))
        wiring = wire(self._parts, provider, turn_config(self.options, provider.capabilities))
        self._scheduler, self._ctx = wiring.scheduler, wiring.run_context
        self._turns, self._vad = wiring.turns, wiring.vad
        self._owner.spawn(self._provider_events(provider), "provider-events")
        follow_caller_audio(
            self.transport.audio_in, provider, self._turns, self.clock, self._vad, self._owner
        )
        self._owner.spawn(self._scheduler.run(), "scheduler")
        text_in = self.transport.text_in()
        if text_in is not None:
            typed = TypedMessages(
                provider,
                self._turns,
                self._history,
                self.clock,
                self._emitter.emit,
                self.generate_reply,
            )
            typed.follow(text_in, self._owner)
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
        unsettled = list(self._responses.runs.values())
        if self.transport.audio_out is not None:
            self.transport.audio_out.clear()
        await self._owner.aclose()
        await settle_on_close(unsettled, self.clock)
        if self._model is not None and self._provider is not None:
            await self._provider.aclose()
        self._states.close()
        end = self._ended(CallEnd(EndCause.CLOSED))
        self._emitter.emit(SessionClosedEvent(str(end), end.code if end.failed else None))
        self._emitter.close()
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    @property
    def end(self) -> CallEnd | None:
        """Why the session ended (None while it runs): kept by the session itself, so it is
        known however much the bounded event log dropped after the ending error."""
        return self._end

    def _ended(self, end: CallEnd) -> CallEnd:
        """Record why the session ends, unless a cause was recorded first."""
        if self._end is None:
            self._end = end
        return self._end

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
        if self._provider is None:
            raise RuntimeError("AgentSession.start() has not been called")
        self._agent = agent
        self._executor.set_tools(agent.tools)
        await self._provider.update_options(
            session_options(agent, self.options, self.transport, first=False)
        )

    @property
    def agent(self) -> Agent | None:
        return self._agent

    @property
    def history(self) -> list[ConversationItem]:
        """The conversation as the caller heard it, in conversation order."""
        return self._history.items()

    def history_json(self) -> dict[str, Any]:
        """JSON-serializable history plus per-turn metrics (the CLI writes this): the most
        recent `CallBudget.max_kept_turns` turns in full, every turn in `metrics_summary`."""
        data = self._history.to_json()
        data["metrics"] = self._turn_record.recent_json()
        data["metrics_summary"] = self._turn_record.summary_json()
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
        return list(self._responses.runs.values())

    def on_response(self, callback: Callable[[ResponseRun], None]) -> Callable[[], None]:
        """Call `callback` with every response as it starts; returns an unsubscribe function."""
        return self._responses.watch(callback)

    def snapshot(self) -> SessionSnapshot:
        """What the session is doing right now (see `SessionSnapshot`)."""
        return snapshot_of(self._states, self._responses, self._scheduler, self._turns)

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
        # Inside the provider's receive step where it can: a response's run (and its first
        # segment) exists before the audio read right after `response.created` is routed.
        await provider.forward_events(self._on_provider_event)
        if not self._closing:
            self._ended(CallEnd(EndCause.PROVIDER_CLOSED))
            await self.aclose()

    def _on_provider_event(self, event: ProviderEvent) -> None:
        match event:
            case GenerationStarted(generation=generation):
                self._responses.on_generation(generation)
            case ProviderError():
                self._emitter.emit(
                    ErrorEvent(
                        event.message,
                        code=event.code,
                        recoverable=not event.fatal,
                        operation=event.operation,
                    )
                )
                if event.fatal and not self._closing:
                    self._ended(CallEnd(EndCause.FATAL_ERROR, event.code, event.message))
                    self._owner.spawn(self.aclose(), "close-on-fatal")
            case SessionReconnected():
                now = self.clock.now()
                replayed = len(event.replayed_item_ids)
                self._emitter.emit(ProviderReconnected(event.reason, event.outage_s, replayed, now))
            case SessionClosed():
                error = event.error
                self._ended(
                    CallEnd(EndCause.PROVIDER_CLOSED, event.reason)
                    if error is None
                    else CallEnd(EndCause.FATAL_ERROR, error.code, error.message)
                )
                if error is not None:
                    self._emitter.emit(
                        ErrorEvent(error.message, code=error.code, recoverable=False)
                    )
        self._require_turns().provider_event(event)

    def _over_response_bound(self, limit: int) -> None:
        """The provider started more responses than a call may hold open: end the call."""
        if self._closing:
            return
        message = (
            f"the provider started more than {limit} responses not yet played "
            "(CallBudget.max_open_responses); ending the call"
        )
        # Recorded now: the provider closes first, and its close notice must not win.
        self._ended(CallEnd(EndCause.FATAL_ERROR, RESPONSE_BUDGET_CODE, message))
        self._emitter.emit(ErrorEvent(message, code=RESPONSE_BUDGET_CODE, recoverable=False))
        self._owner.spawn(self._end_on_response_bound(), "close-on-response-bound")

    async def _end_on_response_bound(self) -> None:
        # The provider goes first: it keeps reading (and queueing for nobody) while the runs
        # settle, as long as the peer floods — like a provider that ended the call itself.
        if self._provider is not None:
            await self._provider.aclose()
        await self.aclose()

    def _show_agent_state(self, event: AgentStateChanged) -> None:
        text_sink = self.transport.text_out
        if text_sink is not None:
            text_sink.agent_state(event.new)

    def _task_failed(self, name: str, error: BaseException) -> None:
        log.error("session task %s failed", name, exc_info=error)
        self._emitter.emit(
            ErrorEvent(f"{name} failed: {type(error).__name__}: {error}", source="runtime")
        )
