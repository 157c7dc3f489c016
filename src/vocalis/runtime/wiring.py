"""How a session's parts are put together once its provider is connected.

`AgentSession.start` connects, then calls `wire`: the reply scheduler (one active response),
the context every response run shares, the turn-taking driver and, with local turns, the
energy VAD. Kept apart from the session so the session stays a thin coordinator and the
wiring reads in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from vocalis.audio.vad import EnergyVAD
from vocalis.conversation.history import History
from vocalis.providers.base import Capabilities, OperationError, RealtimeSession, SessionOptions
from vocalis.runtime.agent import Agent
from vocalis.runtime.events import ErrorEvent, SessionEvent, ToolCallFinished, ToolCallStarted
from vocalis.runtime.observe import SessionSnapshot
from vocalis.runtime.options import AgentSessionOptions
from vocalis.runtime.response import RunContext
from vocalis.runtime.responses import ResponseTable
from vocalis.runtime.scheduler import ReplyRequest, ReplyScheduler
from vocalis.runtime.states import StateTracker
from vocalis.runtime.tasks import TaskOwner
from vocalis.runtime.tool_executor import ToolExecutor, ToolRun
from vocalis.runtime.turn_driver import TurnContext, TurnDriver
from vocalis.runtime.turns import HistoryUnsynced, TurnConfig
from vocalis.runtime.watchdog import StallWatchdog
from vocalis.transports.base import Transport
from vocalis.utils.clock import Clock


@dataclass(frozen=True, slots=True)
class SessionParts:
    """What exists before the provider does (built in `AgentSession.__init__`)."""

    transport: Transport
    clock: Clock
    options: AgentSessionOptions
    owner: TaskOwner
    history: History
    states: StateTracker
    executor: ToolExecutor
    responses: ResponseTable
    emit: Callable[[SessionEvent], None]
    enqueue: Callable[[ReplyRequest], None]


@dataclass(frozen=True, slots=True)
class Wiring:
    scheduler: ReplyScheduler
    run_context: RunContext
    turns: TurnDriver
    vad: EnergyVAD | None


def wire(parts: SessionParts, provider: RealtimeSession, config: TurnConfig) -> Wiring:
    caps = provider.capabilities
    vad = None
    if config.local_turns:
        local = parts.options.local_vad
        vad = EnergyVAD(
            caps.input_sample_rate,
            threshold_db=local.threshold_db,
            min_speech_ms=local.min_speech_ms,
            min_silence_ms=local.min_silence_ms,
        )
    scheduler = ReplyScheduler(
        provider,
        parts.clock,
        start_run=parts.responses.start,
        on_error=lambda request, error: parts.emit(_reply_failed(request, error)),
        on_queue_changed=parts.states.replies_pending,
    )
    turns = TurnDriver(
        TurnContext(
            provider=provider,
            scheduler=scheduler,
            history=parts.history,
            states=parts.states,
            transport=parts.transport,
            clock=parts.clock,
            owner=parts.owner,
            options=parts.options,
            emit=parts.emit,
            enqueue=parts.enqueue,
            runs=lambda: list(parts.responses.runs.values()),
        ),
        config,
    )

    def unsynced() -> None:
        # A tool output did not reach the provider: the re-sync puts it there, after its
        # call, and replies wait for that.
        turns.tell(HistoryUnsynced())

    run_context = RunContext(
        provider=provider,
        clock=parts.clock,
        owner=parts.owner,
        sink=parts.transport.audio_out,
        text_sink=parts.transport.text_out,
        states=parts.states,
        history=parts.history,
        executor=parts.executor,
        scheduler=scheduler,
        options=parts.options,
        emit=parts.emit,
        sample_rate=caps.output_sample_rate,
        on_settled=parts.responses.settled,
        request_resync=unsynced,
        watchdog=_watchdog(parts),
    )
    parts.responses.bind(run_context, turns)
    return Wiring(scheduler, run_context, turns, vad)


def _watchdog(parts: SessionParts) -> StallWatchdog:
    """The session's one stall watchdog (every run registers with it)."""
    options = parts.options
    return StallWatchdog(
        parts.clock, parts.owner, limit_s=options.stall_timeout_s, ack_s=options.cancel_timeout_s
    )


def _reply_failed(request: ReplyRequest, error: OperationError) -> ErrorEvent:
    return ErrorEvent(
        f"{request.kind} could not start: {error.message}",
        code=error.code,
        operation="response.create",
    )


def tool_events(
    emit: Callable[[SessionEvent], None],
) -> tuple[Callable[[ToolRun], None], Callable[[ToolRun], None]]:
    """The executor's started/finished callbacks, as session events."""

    def started(run: ToolRun) -> None:
        emit(ToolCallStarted(run.call_id, run.name, run.arguments, run.response_id))

    def finished(run: ToolRun) -> None:
        result = run.result
        assert result is not None
        duration = (run.finished_at or run.started_at) - run.started_at
        emit(
            ToolCallFinished(
                run.call_id, run.name, result.output, result.is_error, duration, run.response_id
            )
        )

    return started, finished


def turn_config(options: AgentSessionOptions, caps: Capabilities) -> TurnConfig:
    """Who takes turns: vocalis (no server turn detection, or a provider without server VAD)
    and/or the provider answering a turn on its own (server VAD `create_response`)."""
    td = options.server_turn_detection
    return TurnConfig(
        local_turns=td is None or not caps.server_vad,
        server_replies=td is not None and td.create_response,
    )


def session_options(
    agent: Agent, options: AgentSessionOptions, transport: Transport, *, first: bool
) -> SessionOptions:
    """The provider session's configuration for `agent` (the voice only at the start)."""
    return SessionOptions(
        instructions=agent.instructions,
        voice=agent.voice if first else None,
        output_modalities=("audio",) if transport.audio_out is not None else ("text",),
        turn_detection=options.server_turn_detection,
        input_transcription_model=options.input_transcription_model,
        tools=agent.tool_specs,
    )


def snapshot_of(
    states: StateTracker,
    responses: ResponseTable,
    scheduler: ReplyScheduler | None,
    turns: TurnDriver | None,
) -> SessionSnapshot:
    interruptions = turns.interruptions if turns is not None else None
    return SessionSnapshot(
        agent_state=states.agent,
        user_state=states.user,
        responses=responses.views(),
        queued_replies=scheduler.queued if scheduler is not None else 0,
        requesting=scheduler is not None and scheduler.inflight is not None,
        resync_pending=scheduler is not None and scheduler.held,
        interruption_pending=bool(interruptions and interruptions.pending),
        false_interruptions=interruptions.false_interruptions if interruptions else 0,
        resumed_after_false_interruption=interruptions.resumed if interruptions else 0,
    )
