"""The sim-server: OpenAI Realtime GA (and optional other dialects) over Starlette + uvicorn.

Each WebSocket connection to ``/v1/realtime`` gets a :class:`~vocalis.sim.session.SimSession`;
this module only does what needs sockets and HTTP: the handshake checks (model, auth, the
refused beta header), the reader loop feeding :meth:`SimSession.receive`, the writer draining
the session's outbox, the session-expiry timer and the response tasks (all owned by one
TaskGroup per connection). HTTP endpoints with bodies and other dialects' paths are Starlette
routes on the same port; ``tls=`` serves all of it as ``https://`` / ``wss://``.

Embedded use (tests, benchmarks, the demo)::

    async with SimServer(scenario="examples/scenarios/preamble_tool_answer.yaml") as server:
        ...connect to server.url...
        session = await server.wait_for_session(1)
        assert [e["type"] for e in session.client_events].count("conversation.item.truncate") == 1

From synchronous code: ``with run_sim_server_in_thread() as handle: handle.url``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from starlette.routing import BaseRoute, Route, Router, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from vocalis.sim import errors, http_api, serving
from vocalis.sim.admission import Admitted, admit, credential
from vocalis.sim.brain import ScriptCursor
from vocalis.sim.client_secrets import ClientSecretStore
from vocalis.sim.dialect import Dialect
from vocalis.sim.direct_ws import DIRECT_KEY, DirectSocket
from vocalis.sim.ids import IdFactory
from vocalis.sim.log import EventLog
from vocalis.sim.outbox import ABNORMAL_CLOSE, write_frame
from vocalis.sim.scenario import Scenario, load_scenario
from vocalis.sim.session import SimSession
from vocalis.sim.tls import LocalCertificate, server_ssl_context
from vocalis.transports.web.server import WebServer
from vocalis.utils.logsafe import redacting_logger

REALTIME_PATH = "/v1/realtime"
BETA_CLOSE_CODE = 1008
# Every method reaches the handler, which answers a wrong one with the real API's 404 text.
ANY_METHOD = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _host_in_url(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


class SimServer:
    """The local OpenAI-Realtime-GA-compatible server, embeddable in tests.

    ``async with SimServer(host="127.0.0.1", port=0, scenario=..., pace=0.0, log_path=None)``
    starts it on a free port. Attributes:

    * ``url`` — e.g. ``"ws://127.0.0.1:54321/v1/realtime"`` (``wss://`` with ``tls``; add
      ``?model=...`` or not: a missing model means ``gpt-realtime``); ``base_url`` is the
      ``http(s)://host:port`` root of every endpoint.
    * ``sessions`` — one :class:`~vocalis.sim.session.SimSession` per connection, live and
      closed, in connection order. Each exposes ``conversation.items`` (ordered items with
      ``id``, ``type``, ``role``, ``status``, ``text`` = text or transcript, ``audio_ms``,
      ``truncated_at_ms``), ``client_events`` / ``server_events`` (event dicts in order, audio
      replaced by byte counts), ``server_types()``, ``closed``, ``close_code``, ``notes``
      and the waiters ``wait_for(pred)``, ``wait_for_server_event(type)``,
      ``wait_for_client_event(type)``.
    * ``await wait_for_session(n)`` — the n-th session (1-based) once it connected.

    ``scenario`` is a :class:`Scenario`, a path to a YAML/JSON file, a mapping, or ``None``
    (default brain only). ``pace`` is the speed of audio emission relative to real time
    (1.0 real time, 4.0 four times faster, 0 as fast as the socket allows).
    ``session_max_seconds`` makes every session expire (``session_expired`` + close 1001).
    ``max_closed_sessions`` bounds how many ended sessions stay in ``sessions`` (default: all,
    which tests want; the CLI keeps 50). ``max_recorded_events`` bounds each session's
    ``client_events`` / ``server_events`` to about the newest N (default: all; the CLI keeps
    none — its ``--log`` file has every event).
    ``require_auth`` refuses (HTTP 401) a handshake without ``Authorization: Bearer <any>``,
    ``api-key: <any>`` or an ``openai-insecure-api-key.<any>`` subprotocol (any key value is
    accepted), like the real API; pass ``require_auth=False`` for keyless local clients.
    ``tls`` (a :class:`~vocalis.sim.tls.LocalCertificate`) serves https/wss instead of
    http/ws. ``dialects`` add other wire protocols' routes on the same port. ``wall_clock``
    is what client-secret expiry (``POST /v1/realtime/client_secrets``) is measured on.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        scenario: Scenario | str | Path | dict[str, Any] | None = None,
        pace: float = 0.0,
        log_path: str | Path | None = None,
        session_max_seconds: float | None = None,
        require_auth: bool = True,
        refuse_beta: bool = True,
        default_model: str = "gpt-realtime",
        max_closed_sessions: int | None = None,
        max_recorded_events: int | None = None,
        tls: LocalCertificate | None = None,
        dialects: Sequence[Dialect] = (),
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if scenario is None:
            scenario = Scenario()
        elif not isinstance(scenario, Scenario):
            scenario = load_scenario(scenario)
        self.scenario = scenario
        self.host = host
        self.port = port
        self.pace = pace
        self.log_path = Path(log_path) if log_path is not None else None
        self.session_max_seconds = session_max_seconds or scenario.server.session_max_seconds
        self.require_auth = require_auth
        self.refuse_beta = refuse_beta
        self.default_model = default_model
        self.max_closed_sessions = max_closed_sessions
        self.max_recorded_events = max_recorded_events
        self.tls = tls
        self.dialects = tuple(dialects)
        self.sessions: list[SimSession] = []
        self.connections = 0  # connections accepted so far
        # server.script_scope "server": one script cursor shared by every connection.
        self._script = ScriptCursor(scenario) if scenario.server.script_scope == "server" else None
        self.event_log: EventLog | None = None
        # Ephemeral keys minted by POST /v1/realtime/client_secrets (expiry on wall_clock).
        self.client_secrets = ClientSecretStore(default_model=default_model, now=wall_clock)
        self._secret_ids = IdFactory(f"{scenario.seed}:secrets")
        self._server: WebServer | None = None
        self._new_session = asyncio.Event()

    @property
    def base_url(self) -> str:
        """``http://host:port`` (``https://`` with TLS): the root of every endpoint."""
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{_host_in_url(self.host)}:{self.port}"

    @property
    def url(self) -> str:
        """The ws:// (wss:// with TLS) URL of the realtime endpoint (valid once started)."""
        return "ws" + self.base_url.removeprefix("http") + REALTIME_PATH

    def routes(self) -> list[BaseRoute]:
        """The OpenAI dialect's routes (the other dialects' come first)."""
        secrets = http_api.client_secrets_endpoint(
            self.client_secrets, self._secret_ids, require_auth=self.require_auth
        )
        return [
            WebSocketRoute(REALTIME_PATH, self._realtime_socket),
            WebSocketRoute(REALTIME_PATH + "/", self._realtime_socket),
            Route(REALTIME_PATH + "/client_secrets", secrets, methods=ANY_METHOD),
            Route(REALTIME_PATH + "/calls", http_api.calls_not_supported, methods=ANY_METHOD),
            Route(
                REALTIME_PATH + "/calls/{rest:path}",
                http_api.calls_not_supported,
                methods=ANY_METHOD,
            ),
        ]

    async def start(self) -> None:
        if self.log_path is not None:
            self.event_log = EventLog(self.log_path)
        routes: list[BaseRoute] = []
        for dialect in self.dialects:
            routes.extend(dialect.routes(self))
        routes.extend(self.routes())
        app = Router(routes=routes, default=http_api.fallback)
        # The handshake is logged at DEBUG with every header: route it through a logger that
        # redacts Authorization / api-key values, so a client's key never hits a log.
        redacting_logger("uvicorn.error")
        context = server_ssl_context(self.tls) if self.tls is not None else None
        self._server = await serving.serve(app, self.host, self.port, ssl_context=context)
        self.port = self._server.port

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.aclose()
            self._server = None
        if self.event_log is not None:
            self.event_log.close()
            self.event_log = None

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def wait_for_session(self, n: int = 1, within: float = 10.0) -> SimSession:
        """The ``n``-th connection's session (1-based), waiting until it exists."""
        async with asyncio.timeout(within):
            while self.connections < n:
                event = self._new_session
                await event.wait()
        for session in self.sessions:
            if session.index == n - 1:
                return session
        raise LookupError(f"session {n} was forgotten (max_closed_sessions)")

    # --- connection -------------------------------------------------------------------------

    async def _realtime_socket(self, websocket: WebSocket) -> None:
        offered: list[str] = websocket.scope.get("subprotocols", [])
        headers = websocket.headers
        decision = admit(
            key=credential(headers.get("authorization"), headers.get("api-key"), offered),
            query=websocket.query_params,
            require_auth=self.require_auth,
            default_model=self.default_model,
            secrets=self.client_secrets,
        )
        if not isinstance(decision, Admitted):
            await websocket.send_denial_response(
                http_api.json_error(decision.status, decision.message, code=decision.code)
            )
            return
        await websocket.accept(subprotocol="realtime" if "realtime" in offered else None)
        session = SimSession(
            index=self.connections,
            model=decision.model,
            kind=decision.kind,
            requested_session=decision.requested_session,
            scenario=self.scenario,
            pace=self.pace,
            log=self.event_log,
            session_max_seconds=self.session_max_seconds,
            script=self._script,
            max_recorded_events=self.max_recorded_events,
        )
        self.sessions.append(session)
        self.connections += 1
        self._new_session.set()
        self._new_session = asyncio.Event()
        code = ABNORMAL_CLOSE
        try:
            code = await self._run_connection(websocket, session)
        finally:
            session.mark_closed(code)
            if self.event_log is not None:
                self.event_log.flush()
            self._forget_old_sessions()

    async def _run_connection(self, websocket: WebSocket, session: SimSession) -> int:
        """Run one accepted connection until either side ends it; returns the close code."""
        tasks: set[asyncio.Task[None]] = set()
        async with asyncio.TaskGroup() as group:

            def spawn(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
                task = group.create_task(coro)
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                return task

            direct = _direct_socket(websocket)
            if direct is not None:
                session.send_now = direct.send_text
            writer = group.create_task(self._writer(websocket, session))
            if self.refuse_beta and websocket.headers.get("openai-beta"):
                session.emit_error(errors.beta_api_shape_disabled())
                session.close(BETA_CLOSE_CODE, "beta API shape disabled")
            else:
                delay = self.scenario.server.on_connect_delay_s
                if delay > 0:
                    await asyncio.sleep(delay)
                session.start(spawn)
                if self.session_max_seconds:
                    spawn(self._expire_after(session, self.session_max_seconds))
            reader = group.create_task(self._reader(websocket, session, direct))
            done, _ = await asyncio.wait((reader, writer), return_when=asyncio.FIRST_COMPLETED)
            for task in (reader, writer, *tasks):
                task.cancel()
        # What the server did (a close frame it sent, a drop) names the end; else the peer's.
        sent = writer.result() if writer.done() and not writer.cancelled() else None
        if sent is not None:
            return sent
        if reader in done and not reader.cancelled():
            return reader.result()
        return ABNORMAL_CLOSE

    def _forget_old_sessions(self) -> None:
        """Bound memory in long-running servers: keep only the newest closed sessions."""
        limit = self.max_closed_sessions
        if limit is None:
            return
        closed = [s for s in self.sessions if s.closed]
        for old in closed[: max(0, len(closed) - limit)]:
            self.sessions.remove(old)

    async def _reader(
        self, websocket: WebSocket, session: SimSession, direct: DirectSocket | None
    ) -> int:
        """Feed client frames to the session; returns the close code once the peer is gone.

        With ``direct`` the frames reach the session synchronously from the socket; the loop
        below then only sees the disconnect."""
        if direct is not None:
            direct.on_message(session.receive)
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return int(message.get("code") or ABNORMAL_CLOSE)
                text = message.get("text")
                session.receive(text if text is not None else message.get("bytes") or b"")
        finally:
            if direct is not None:
                direct.on_message(None)

    async def _writer(self, websocket: WebSocket, session: SimSession) -> int | None:
        """Send the session's outbox; returns the close code it sent (1006 for a drop), or
        None when the peer went away first."""
        try:
            while True:
                code = await write_frame(websocket, await session.outbox.get())
                if code is not None:
                    return code
                session.frame_sent()
        except (WebSocketDisconnect, OSError, RuntimeError):
            return None

    async def _expire_after(self, session: SimSession, seconds: float) -> None:
        await asyncio.sleep(seconds)
        session.expire()


def _direct_socket(websocket: WebSocket) -> DirectSocket | None:
    """The connection's synchronous lanes when our uvicorn protocol serves it (direct_ws)."""
    direct = websocket.scope.get(DIRECT_KEY)
    return direct if isinstance(direct, DirectSocket) else None


class SimServerThread:
    """A :class:`SimServer` running on its own event loop in a daemon thread."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.server: SimServer | None = None
        self._thread = threading.Thread(target=self._run, name="vocalis-sim-server", daemon=True)

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def start(self) -> SimServerThread:
        """Start the thread and wait until the server listens (idempotent)."""
        if not self._thread.is_alive() and not self._ready.is_set():
            self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            self.server = SimServer(**self._kwargs)
            await self.server.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.server.stop()

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=10)

    def __enter__(self) -> SimServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_sim_server_in_thread(**kwargs: Any) -> SimServerThread:
    """Start a :class:`SimServer` (same keyword arguments) in a background thread.

    Use as a context manager or call ``stop()``; ``handle.url`` is the endpoint and
    ``handle.server.sessions`` the sessions (read them only after ``stop()`` or with care:
    they belong to the server thread's event loop).
    """
    return SimServerThread(**kwargs).start()
