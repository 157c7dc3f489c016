"""What `vocalis serve` does once its arguments are parsed (see `vocalis.app.cli.serve`).

One realtime endpoint for the life of the server (the embedded sim-server is started once and
answers every call independently), one `AgentSession` per connection. Before listening, the
endpoint is probed with a real session so "unreachable" or "key refused" is reported at start
(one line, exit 2) rather than on the first caller's connection.

Each call is logged as finished transcript lines prefixed with its number; with `--out DIR`
each call also leaves `DIR/call-N/{history.json,events.jsonl,timeline.html}`.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from vocalis.app.agent_ref import AgentFactory, load_agent_factory
from vocalis.app.call_timelines import CallTimelines
from vocalis.app.conversation import (
    ConversationRecord,
    make_model,
    open_endpoint,
    session_refused,
    start_call,
)
from vocalis.app.endpoint import Endpoint, choose_endpoint
from vocalis.app.errors import UsageError
from vocalis.app.page_events import describe_agent, forward_events
from vocalis.app.reports.live_view import LiveTranscript, render_line
from vocalis.app.reports.outputs import write_call_files
from vocalis.app.serve_fleet import (
    FleetMember,
    default_workers,
    join_fleet,
    serve_fleet,
    serves_page,
    twilio_port,
)
from vocalis.app.terminal import make_console
from vocalis.providers.base import OperationError, RealtimeModel, SessionOptions
from vocalis.runtime.agent import Agent
from vocalis.runtime.session import AgentSession
from vocalis.transports._web import ServedEndpoint, new_token
from vocalis.transports.base import CallInfo, Transport
from vocalis.transports.playground import PlaygroundTextSink
from vocalis.transports.web import TrustedProxies, WebServer
from vocalis.utils import event_loop
from vocalis.utils.clock import MonotonicClock
from vocalis.utils.gc_tuning import settle_heap
from vocalis.utils.logcontext import bind_call
from vocalis.worker import Worker, drain_on

if TYPE_CHECKING:
    from vocalis.transports.webrtc import IceServer

TOKEN_ENV = "VOCALIS_TOKEN"
TURN_USERNAME_ENV = "VOCALIS_TURN_USERNAME"
TURN_CREDENTIAL_ENV = "VOCALIS_TURN_CREDENTIAL"

log = logging.getLogger(__name__)


def shown_url(endpoint: ServedEndpoint, env_token: str | None) -> str:
    """The URL to print. A token from the environment is a shared fleet secret and stdout is
    often the log (systemd, Kubernetes): print `<VOCALIS_TOKEN>` in its place. A random
    per-start token is printed (the operator has no other way to learn it)."""
    if env_token:
        return endpoint.url.replace(env_token, f"<{TOKEN_ENV}>")
    return endpoint.url


def _trusted_proxies(values: list[str] | None) -> TrustedProxies:
    try:
        return TrustedProxies(values or ())
    except ValueError as exc:
        raise UsageError(f"--trust-proxy: {exc}") from None


def _call_printer(console: Console, number: int, model: LiveTranscript) -> Callable[[], None]:
    prefix = Text(f"call {number} │ ", style="dim")

    def refresh() -> None:
        for line in model.take_finished():
            console.print(Text.assemble(prefix, render_line(line)))

    return refresh


def _save_call(out: Path, number: int, record: ConversationRecord, title: str) -> Path:
    folder = out / f"call-{number}"
    write_call_files(
        record.history,
        record.events,
        history_path=folder / "history.json",
        events_path=folder / "events.jsonl",
        timeline_path=folder / "timeline.html",
        title=title,
    )
    return folder


async def probe(model: RealtimeModel, agent: Agent, endpoint: Endpoint) -> None:
    """Open and close one session with the agent's settings: fail now, not on the first call."""
    options = SessionOptions(instructions=agent.instructions, tools=agent.tool_specs)
    try:
        session = await model.connect(options)
    except OperationError as exc:
        raise session_refused(endpoint, exc) from exc
    await session.aclose()


def _probe_agent(agents: AgentFactory) -> Agent:
    """The agent the start-up probe connects with: a per-call factory is tried once here
    with `CallInfo(transport="probe")`, so a broken factory fails at start, not per call."""
    try:
        agent: Agent = agents(CallInfo(transport="probe"))
    except Exception as exc:
        raise UsageError(f"the agent factory failed: {type(exc).__name__}: {exc}") from exc
    return agent


class CallHandler:
    """`on_call` for the playground and Twilio servers: one agent session per connection.

    `agent` is an `Agent` or a per-call factory (`CallInfo -> Agent`, see `agent_ref`): it is
    called with the transport's call info (caller, Twilio custom parameters, page metadata)
    when the call connects; a factory that fails ends that call only (logged with traceback).
    """

    def __init__(
        self,
        agent: Agent | AgentFactory,
        model: RealtimeModel,
        endpoint: Endpoint,
        console: Console,
        out: Path | None,
        on_session: Callable[[AgentSession], None] | None = None,
        *,
        numbers: Callable[[], int] | None = None,
        where: str = "",
    ) -> None:
        """`numbers` hands out call numbers (default 1, 2, …; a fleet's are unique across its
        workers); `where` is added to the "connected" line (which worker took the call)."""
        self.agents: AgentFactory = (lambda _call: agent) if isinstance(agent, Agent) else agent
        self.model = model
        self.endpoint = endpoint
        self.console = console
        self.out = out
        self.on_session = on_session
        self._numbers = numbers or itertools.count(1).__next__
        self._where = f"; {where}" if where else ""
        # Each call's timeline page, linked from the playground (`/timeline/<n>`).
        self.timelines = CallTimelines()

    def _observe(self, session: AgentSession, agent: Agent) -> None:
        """Before the session starts: the worker's accounting and, for a browser, the page's
        view of the agent and its tool calls, latencies and errors."""
        if self.on_session is not None:
            self.on_session(session)
        # The playground page, over its WebSocket or over WebRTC (same text sink).
        text = session.transport.text_out
        if isinstance(text, PlaygroundTextSink):
            describe_agent(
                text,
                agent,
                model=self.endpoint.model,
                endpoint=self.endpoint.describe(),
            )
            forward_events(session, text)

    def _agent_for(self, number: int, transport: Transport) -> Agent | None:
        try:
            agent: Agent = self.agents(transport.call_info)
        except Exception as exc:
            log.exception("the agent factory failed for call %s", number)
            self.console.print(
                f"[red]call {number}: the agent factory failed: {type(exc).__name__}: {exc}[/red]"
            )
            return None
        return agent

    async def __call__(self, transport: Transport) -> None:
        number = self._numbers()
        kind = type(transport).__name__.removesuffix("Transport").lower() or "call"
        # Every record logged for this call (runtime, provider, the agent's tools) says so.
        with bind_call(call=number, transport=kind):
            await self._call(number, kind, transport)

    async def _call(self, number: int, kind: str, transport: Transport) -> None:
        clock = MonotonicClock()
        view = LiveTranscript(title=f"call {number}")
        refresh = _call_printer(self.console, number, view)
        self.console.print(f"[bold]call {number}[/bold] connected ({kind}{self._where})")
        agent = self._agent_for(number, transport)
        if agent is None:
            await transport.aclose()
            return
        try:
            call = await start_call(
                self.model,
                agent,
                transport,
                clock=clock,
                view=view,
                refresh=refresh,
                endpoint=self.endpoint,
                on_session=lambda session: self._observe(session, agent),
            )
        except UsageError as exc:
            self.console.print(f"[red]call {number}: {exc}[/red]")
            return
        record = ConversationRecord(origin=call.recorder.origin)
        title = f"vocalis serve — call {number}"
        path = self.timelines.add(
            number, title, lambda: (call.session.history_json(), call.recorder.records)
        )
        if self.timelines.served and isinstance(transport.text_out, PlaygroundTextSink):
            transport.text_out.event("timeline", {"path": path})
        try:
            await transport.wait_closed()
        finally:
            view.hung_up = True  # a message cut now was cut by the hang-up, not a barge-in
            await call.finish(record)
            for line in view.take_rest():
                self.console.print(Text.assemble(Text(f"call {number} │ "), render_line(line)))
            self.timelines.add(number, title, lambda: (record.history, record.events))
            saved = ""
            if self.out is not None:
                folder = _save_call(self.out, number, record, f"vocalis serve — call {number}")
                saved = f"; wrote {folder}/"
            self.console.print(f"[bold]call {number}[/bold] ended{saved}")


def ice_servers(urls: list[str]) -> tuple[IceServer, ...]:
    """`--ice-server` URLs, TURN credentials from the environment (never flags: command
    lines are visible to every local user)."""
    from vocalis.transports.webrtc import IceServer

    username = os.environ.get(TURN_USERNAME_ENV) or None
    credential = os.environ.get(TURN_CREDENTIAL_ENV) or None
    try:
        return tuple(
            IceServer.from_url(url, username=username, credential=credential) for url in urls
        )
    except ValueError as exc:
        raise UsageError(
            f"--ice-server: {exc} (TURN credentials: {TURN_USERNAME_ENV}, {TURN_CREDENTIAL_ENV})"
        ) from None


async def _serve_webrtc(
    args: argparse.Namespace,
    handler: CallHandler,
    token: str | None,
    worker: Worker,
    trusted: TrustedProxies,
) -> ServedEndpoint:
    try:
        from vocalis.transports.webrtc import serve_webrtc
    except ImportError as exc:
        raise UsageError(
            f"--webrtc needs the webrtc extra (pip install 'vocalis[webrtc]'): {exc}"
        ) from None
    return await serve_webrtc(
        handler,
        args.host,
        args.port,
        token=token,
        ice_servers=ice_servers(args.ice_server),
        gate=worker,
        trusted=trusted,
    )


async def _listen(
    args: argparse.Namespace,
    handler: CallHandler,
    token: str | None,
    worker: Worker,
    trusted: TrustedProxies,
    console: Console,
    fleet_secret: str | None = None,
) -> tuple[list[ServedEndpoint], WebServer | None]:
    """Open the endpoints the flags ask for and print their URLs; on a port that cannot be
    bound, close what was opened and say so in one line. Without `token` (from the
    environment), the workers of a pool share the secret of this start (`fleet_secret`):
    a URL must work on whichever worker accepts it. `console` may be a quiet one (only one
    worker of a pool prints the URLs)."""
    from vocalis.transports.playground import serve_playground
    from vocalis.transports.twilio import serve_twilio

    shared = token or fleet_secret
    served: list[ServedEndpoint] = []
    try:
        if args.webrtc:
            rtc = await _serve_webrtc(args, handler, shared, worker, trusted)
            served.append(rtc)
            console.print(f"playground (WebRTC): open [bold]{shown_url(rtc, token)}[/bold]")
        elif serves_page(args):
            secret = shared or new_token()
            playground = await serve_playground(
                handler,
                args.host,
                args.port,
                token=secret,
                gate=worker,
                trusted=trusted,
                extra_routes=[handler.timelines.route(secret)],
            )
            served.append(playground)
            console.print(f"playground: open [bold]{shown_url(playground, token)}[/bold]")
        if args.twilio:
            twilio = await serve_twilio(
                handler, args.host, twilio_port(args), token=shared, gate=worker, trusted=trusted
            )
            served.append(twilio)
            url = shown_url(twilio, token)
            console.print(f'twilio: <Stream url="{url}"/> (keep the token secret)')
        admin = None
        if args.admin_port is not None:
            admin = await worker.serve_admin(args.host, args.admin_port)
            console.print(f"admin: http://{admin.authority}/metrics")
    except OSError as exc:
        for endpoint_handle in served:
            await endpoint_handle.aclose()
        raise UsageError(f"cannot listen on {args.host}: {exc.strerror or exc}") from exc
    return served, admin


def _make_worker(args: argparse.Namespace, console: Console, member: FleetMember | None) -> Worker:
    """The process' admission, health, metrics and drain (a pool's member counts against the
    pool's limit and says which worker it is when it drains)."""
    label = f" ({member.label})" if member is not None else ""

    def draining(why: str, running: int) -> None:
        console.print(
            f"[bold]draining[/bold]{label} ({why}): no new calls; waiting for {running} running "
            f"call(s), at most {args.drain_timeout:g} s (signal again to stop now)"
        )

    return Worker(
        args.max_sessions,
        drain_timeout_s=args.drain_timeout,
        on_drain=draining,
        fleet=member.place if member is not None else None,
    )


async def _serve(
    args: argparse.Namespace,
    agents: AgentFactory,
    endpoint: Endpoint,
    member: FleetMember | None = None,
) -> int:
    console = make_console()
    # In a pool, one worker prints the URLs and the ready line; the supervisor says the rest.
    announce = console if member is None or member.spec.announce else Console(quiet=True)
    # Several workers behind one load balancer must accept the same URL: a shared token from
    # the environment (never a flag: command lines are visible to every local user).
    token = os.environ.get(TOKEN_ENV) or None
    trusted = _trusted_proxies(args.trust_proxy)
    worker = _make_worker(args, console, member)
    async with open_endpoint(endpoint) as (url, api_key), worker:
        model = make_model(endpoint, url, api_key)
        # Say what is happening: an endpoint that does not answer takes a while to time out.
        announce.print(f"checking {endpoint.describe()}…", style="dim")
        await probe(model, _probe_agent(agents), endpoint)
        handler = CallHandler(
            agents,
            model,
            endpoint,
            console,
            args.out,
            on_session=worker.observe,
            numbers=member.table.next_call_number if member is not None else None,
            where=member.label if member is not None else "",
        )
        secret = member.spec.secret or None if member is not None else None
        served, admin = await _listen(args, handler, token, worker, trusted, announce, secret)
        limit = f"at most {args.max_sessions} calls at once; " if args.max_sessions else ""
        # Before the ready line: a SIGTERM right after it must drain, not kill.
        worker.install_signal_handlers()
        # Set up: freeze the start-up heap out of the collector's walks (issue #17 stall).
        settle_heap()
        announce.print(f"agent {args.agent_ref} on {endpoint.describe()}; {limit}Ctrl-C to stop")
        if member is not None:
            member.on_supervisor_gone(lambda: worker.begin_drain("supervisor exited"))
            member.ready()
        servers = [s.server for s in served] + ([admin] if admin is not None else [])
        for server in servers:
            worker.metrics.watch_connections_closed(server.guard.closed)
        try:
            # Until drained (SIGTERM/Ctrl-C, running calls finished) or the drain timed out.
            await drain_on(worker, *servers)
        finally:
            for endpoint_handle in served:
                await endpoint_handle.aclose()
        if member is None:  # a pool's supervisor says when the pool stopped
            console.print("stopped")
    return 0


def _check_flags(args: argparse.Namespace) -> None:
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0..65535, got {args.port}")
    if args.max_sessions is not None and args.max_sessions < 1:
        raise UsageError(f"--max-sessions must be at least 1, got {args.max_sessions}")
    if args.drain_timeout < 0:
        raise UsageError(f"--drain-timeout must be >= 0, got {args.drain_timeout:g}")
    if args.workers is None:
        args.workers = default_workers()
    if args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")


def serve(args: argparse.Namespace) -> int:
    endpoint = choose_endpoint(args)
    agents = load_agent_factory(args.agent_ref)
    _check_flags(args)
    member = join_fleet(args)
    if member is None and args.workers > 1:
        return serve_fleet(args)
    # Every log record of a worker says which one (index and pid).
    fleet_fields = bind_call(worker=member.index, pid=os.getpid()) if member is not None else None
    with fleet_fields or contextlib.nullcontext():
        try:
            # asyncio unless VOCALIS_LOOP=uvloop: the accept pause needs asyncio's Server.
            return event_loop.run(_serve(args, agents, endpoint, member), auto="asyncio")
        except KeyboardInterrupt:
            return 0
