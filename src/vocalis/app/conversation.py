"""Run one conversation end to end: endpoint, agent session, live view, and the record of it.

Why: `vocalis demo` and `vocalis run` differ only in who the caller is (a simulated person or a
WAV file). Everything else — starting the embedded sim-server when needed, connecting the real
OpenAI client, recording every session event, feeding the live transcript, waiting until the
agent is truly done (no response active, all audio played), closing everything in order — is
here once, so both commands behave the same and the waiting rules are written down once.

"Done" means: the caller's input ended (the transport says so), then the agent has been idle —
state `listening` (no response running, none queued, no tool waiting for its follow-up) and
the sink has nothing queued or playing — for `settle_s`. A deadline bounds the whole run.
"""

from __future__ import annotations

import asyncio
import typing
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse, urlunparse

import yaml

from vocalis import telemetry
from vocalis.app.endpoint import Endpoint
from vocalis.app.errors import UsageError
from vocalis.app.reports.event_log import BoundedEventLog
from vocalis.app.reports.live_feed import EventFeed
from vocalis.app.reports.live_view import LiveTranscript, LiveView
from vocalis.app.reports.outputs import event_to_json, stamp_trace
from vocalis.app.scenario_errors import describe
from vocalis.providers.base import ErrorKind, OperationError, RealtimeModel
from vocalis.providers.openai import OpenAIRealtimeModel
from vocalis.runtime.agent import Agent
from vocalis.runtime.budget import DEFAULT_BUDGET, CallBudget
from vocalis.runtime.events import (
    SessionEvent,
)
from vocalis.runtime.options import AgentSessionOptions
from vocalis.runtime.session import AgentSession
from vocalis.transports.base import (
    AudioSink,
    AudioSource,
    TextSink,
    Transport,
)
from vocalis.utils.clock import Clock

# Caller transcripts in the history and the live view (None: no input transcription).
DEFAULT_TRANSCRIPTION_MODEL = "gpt-4o-mini-transcribe"

# A placeholder key for the embedded server (it accepts any bearer token, like the docs say).
_SIM_KEY = "sim-local"


def api_root(realtime_url: str) -> str:
    """`ws://h:p/v1/realtime[?model=...]` → `ws://h:p/v1` (the client's `base_url`)."""
    parsed = urlparse(realtime_url)
    path = parsed.path.rstrip("/")
    path = path.removesuffix("/realtime")
    return urlunparse((parsed.scheme, parsed.netloc, path, "", "", ""))


@asynccontextmanager
async def open_endpoint(
    endpoint: Endpoint,
    scenario: dict[str, Any] | None = None,
    inspect_server: Callable[[Any], None] | None = None,
) -> AsyncIterator[tuple[str, str | None]]:
    """Yield `(realtime_url, api_key)`, starting the embedded sim-server when asked to.

    `scenario` (already parsed) overrides `endpoint.scenario` (a file) for the embedded server;
    `inspect_server` sees the `SimServer` before it stops (its conversations are the provider
    side of the record: what the "model" remembers).
    """
    if endpoint.kind != "embedded":
        yield endpoint.url or "", endpoint.api_key
        return
    from vocalis.sim.server import SimServer

    source: Any = scenario if scenario is not None else endpoint.scenario
    gemini = endpoint.provider == "gemini"
    try:
        dialects = [_gemini_dialect()] if gemini else []
        server = SimServer("127.0.0.1", 0, scenario=source, pace=endpoint.pace, dialects=dialects)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise UsageError(f"invalid scenario {endpoint.scenario}: {describe(exc)}") from exc
    async with server:
        # Gemini clients take the server root; OpenAI clients the realtime URL.
        yield (server.base_url if gemini else server.url), _SIM_KEY
        if inspect_server is not None:
            inspect_server(server)


def _gemini_dialect() -> Any:
    from vocalis.sim.gemini import DIALECT

    return DIALECT


@dataclass(slots=True)
class ConversationRecord:
    """Everything a command writes or checks after the conversation."""

    history: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    timed_out: bool = False
    # The user stopped the run (Ctrl-C): the record holds everything up to that moment.
    stopped: bool = False
    origin: float = 0.0


class EventRecorder:
    """Every session event as a JSON record, stamped on the session's clock — within the
    call's event-log budget (`BoundedEventLog`: a peer decides how many events there are)."""

    def __init__(self, clock: Clock, origin: float, budget: CallBudget = DEFAULT_BUDGET) -> None:
        self.clock = clock
        self.origin = origin
        self.log = BoundedEventLog(budget.max_event_log_bytes)

    @property
    def records(self) -> list[dict[str, Any]]:
        return self.log.records()

    def attach(self, session: AgentSession) -> None:
        for kind in typing.get_args(SessionEvent):
            session.on(kind, self._record)

    def _record(self, event: object) -> None:
        self.log.append(event_to_json(event, t=self.clock.now(), origin=self.origin))


def agent_idle(session: AgentSession, sink: AudioSink | None) -> bool:
    """No response active or queued, no tool waiting for its follow-up, nothing playing —
    or the session is closed (a fatal provider error): nothing more will come."""
    if session.agent_state == "closed":
        return True
    if sink is None:
        return session.agent_state == "listening"
    pending = getattr(sink, "pending_segments", 0)
    return session.agent_state == "listening" and not sink.playing and not pending


async def _wait_idle(
    session: AgentSession, sink: AudioSink | None, clock: Clock, settle_s: float
) -> None:
    idle_since: float | None = None
    while True:
        now = clock.now()
        if agent_idle(session, sink):
            idle_since = now if idle_since is None else idle_since
            if now - idle_since >= settle_s:
                return
        else:
            idle_since = None
        await clock.sleep(0.05)


async def _caller_or_session_ended(transport: Transport, session: AgentSession) -> None:
    """The caller's side ended, or the session did (a fatal provider error: the call is over
    even though the caller's input may go on)."""
    waits = {
        asyncio.ensure_future(transport.wait_closed()),
        asyncio.ensure_future(session.wait_closed()),
    }
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for wait in done:
            wait.result()  # a failure of either is the run's
    finally:
        for wait in waits:
            wait.cancel()


# How long the CLI waits for an endpoint to accept a session: long enough for a slow real API
# handshake, short enough that a wrong host or port is reported before the user gives up.
CLI_CONNECT_TIMEOUT_S = 8.0


def make_model(endpoint: Endpoint, url: str, api_key: str | None) -> RealtimeModel:
    """The real client of the endpoint's protocol, pointed at it (the sim-server included)."""
    if endpoint.provider == "gemini":
        from vocalis.providers.gemini import GeminiRealtimeModel

        return GeminiRealtimeModel(
            endpoint.model,
            api_key=api_key,
            base_url=url or None,
            connect_timeout_s=CLI_CONNECT_TIMEOUT_S,
            reconnect=endpoint.kind != "embedded",
        )
    return OpenAIRealtimeModel(
        endpoint.model,
        api_key=api_key,
        base_url=api_root(url),
        connect_timeout_s=CLI_CONNECT_TIMEOUT_S,
        # The embedded server lives exactly as long as this process: nothing to reconnect to.
        reconnect=endpoint.kind != "embedded",
    )


def where(endpoint: Endpoint) -> str:
    return endpoint.url or "" if endpoint.kind == "url" else endpoint.describe()


# What the provider's "connect failed: <exception repr>" means, in words a user acts on.
_CONNECT_REASONS = (
    ("ConnectionRefusedError", "connection refused (is the server running on that port?)"),
    ("gaierror", "unknown host"),
    ("TimeoutError", "no answer (timed out)"),
)


def session_refused(endpoint: Endpoint, exc: OperationError) -> UsageError:
    """The one-line error for an endpoint that cannot be reached or refuses the session."""
    reason = exc.message
    if exc.kind is ErrorKind.UNAVAILABLE:
        reason = next((text for key, text in _CONNECT_REASONS if key in reason), reason)
        return UsageError(f"cannot reach {where(endpoint)}: {reason}")
    return UsageError(f"cannot start a session on {where(endpoint)}: {reason}")


@dataclass(slots=True)
class Call:
    """One live session with its recorder; `finish()` closes it and returns the record."""

    session: AgentSession
    transport: Transport
    recorder: EventRecorder

    async def finish(self, record: ConversationRecord) -> ConversationRecord:
        try:
            record.history = self.session.history_json()
            await self.session.aclose()
        finally:
            await self.transport.aclose()
        record.history = self.session.history_json()
        record.events = self.recorder.records
        stamp_trace(record.history, record.events, telemetry.trace_id(self.session))
        # The ending error from the session itself: the bounded log may have dropped its record.
        end = self.session.end
        ending = [end.message or str(end)] if end is not None and end.failed else []
        logged = [
            str(r.get("message"))
            for r in record.events
            if r.get("type") == "error" and r.get("recoverable") is False
        ]
        record.errors = ending + [m for m in logged if m not in ending]
        return record


async def start_call(
    model: RealtimeModel,
    agent: Agent,
    transport: Transport,
    *,
    clock: Clock,
    endpoint: Endpoint,
    view: LiveTranscript | None = None,
    refresh: Callable[[], None] | None = None,
    on_state: Callable[[str], None] | None = None,
    on_session: Callable[[AgentSession], None] | None = None,
    transcription_model: str | None = DEFAULT_TRANSCRIPTION_MODEL,
) -> Call:
    """Open an `AgentSession` on `transport`, recording events and feeding the view (if any).

    Raises `UsageError` when the endpoint cannot be reached or refuses the session.
    """
    recorder = EventRecorder(clock, clock.now())
    options = AgentSessionOptions(input_transcription_model=transcription_model)
    session = AgentSession(model, transport, clock=clock, options=options)
    recorder.attach(session)
    if view is not None:
        EventFeed(view, refresh or (lambda: None), on_state).attach(session)
    if on_session is not None:
        on_session(session)
    try:
        await session.start(agent)
    except OperationError as exc:
        await transport.aclose()
        raise session_refused(endpoint, exc) from exc
    return Call(session, transport, recorder)


async def converse(
    agent: Agent,
    endpoint: Endpoint,
    transport: Transport,
    *,
    clock: Clock,
    view: LiveView,
    scenario: dict[str, Any] | None = None,
    inspect_server: Callable[[Any], None] | None = None,
    on_state: Callable[[str], None] | None = None,
    on_session: Callable[[AgentSession], None] | None = None,
    max_seconds: float | None,
    settle_s: float = 0.5,
    until_idle: bool = True,
    transcription_model: str | None = DEFAULT_TRANSCRIPTION_MODEL,
    record: ConversationRecord | None = None,
) -> ConversationRecord:
    """Run the conversation until the input ended and the agent is idle (or the deadline).

    `until_idle=False` ends at the hang-up itself (a live caller who hung up hears nothing
    more); `max_seconds=None` sets no deadline. Raises `UsageError` when the endpoint cannot
    be reached or refuses the session (exit 2). Pass `record` to keep what happened when the
    run is cancelled (Ctrl-C): it is filled in before the cancellation goes on.
    """
    record = record or ConversationRecord()
    record.origin = clock.now()
    async with open_endpoint(endpoint, scenario, inspect_server) as (url, api_key):
        call = await start_call(
            make_model(endpoint, url, api_key),
            agent,
            transport,
            clock=clock,
            view=view.model,
            refresh=view.refresh,
            endpoint=endpoint,
            on_state=on_state,
            on_session=on_session,
            transcription_model=transcription_model,
        )
        record.origin = call.recorder.origin
        try:
            async with asyncio.timeout(max_seconds):
                await _caller_or_session_ended(transport, call.session)
                if not until_idle:
                    view.model.hung_up = True
                else:
                    await _wait_idle(call.session, transport.audio_out, clock, settle_s)
        except TimeoutError:
            record.timed_out = True
        except asyncio.CancelledError:
            # Ctrl-C: what is playing now is cut by the stop, not by the caller.
            view.model.hung_up = True
            record.stopped = True
            raise
        finally:
            await call.finish(record)
    return record


class WithTextSink(Transport):
    """A transport with our text sink attached (for transports that have none of their own)."""

    def __init__(self, inner: Transport, text_sink: TextSink) -> None:
        self.inner = inner
        self._text = text_sink

    @property
    def audio_in(self) -> AudioSource:
        return self.inner.audio_in

    @property
    def audio_out(self) -> AudioSink | None:
        return self.inner.audio_out

    @property
    def text_out(self) -> TextSink:
        return self._text

    def text_in(self) -> AsyncIterator[str] | None:
        return self.inner.text_in()

    async def wait_closed(self) -> None:
        await self.inner.wait_closed()

    async def aclose(self) -> None:
        await self.inner.aclose()
