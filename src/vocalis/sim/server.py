"""The WebSocket shell: ``/v1/realtime?model=...`` over websockets' asyncio server.

Each connection gets a :class:`~vocalis.sim.session.SimSession`; this module only does what
needs sockets: the HTTP handshake checks (path, model, auth, the refused beta header), the
reader loop feeding :meth:`SimSession.receive`, the writer draining the session's outbox, the
session-expiry timer and the response tasks (all owned by one TaskGroup per connection).

Embedded use (tests, benchmarks, the demo)::

    async with SimServer(scenario="examples/scenarios/preamble_tool_answer.yaml") as server:
        ...connect to server.url...
        session = await server.wait_for_session(1)
        assert [e["type"] for e in session.client_events].count("conversation.item.truncate") == 1

From synchronous code: ``with run_sim_server_in_thread() as handle: handle.url``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from vocalis.sim import errors
from vocalis.sim.brain import ScriptCursor
from vocalis.sim.log import EventLog
from vocalis.sim.scenario import Scenario, load_scenario
from vocalis.sim.session import Abort, Close, SimSession
from vocalis.utils.logsafe import redacting_logger

REALTIME_PATH = "/v1/realtime"
MAX_FRAME_BYTES = 32 * 1024 * 1024  # a 15 MiB append is ~20 MiB of base64 JSON
BETA_CLOSE_CODE = 1008


def _json_response(connection: ServerConnection, status: int, message: str, code: str) -> Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
    response = connection.respond(status, json.dumps(body) + "\n")
    response.headers["Content-Type"] = "application/json"
    return response


def _has_auth(request: Request) -> bool:
    authorization = request.headers.get("Authorization", "")
    if authorization.lower().startswith("bearer ") and authorization[7:].strip():
        return True
    if request.headers.get("api-key"):
        return True
    protocols = ",".join(request.headers.get_all("Sec-WebSocket-Protocol"))
    return "openai-insecure-api-key." in protocols


class SimServer:
    """The local OpenAI-Realtime-GA-compatible server, embeddable in tests.

    ``async with SimServer(host="127.0.0.1", port=0, scenario=..., pace=0.0, log_path=None)``
    starts it on a free port. Attributes:

    * ``url`` — e.g. ``"ws://127.0.0.1:54321/v1/realtime"`` (add ``?model=...`` or not; the
      server accepts a missing model and uses ``gpt-realtime``).
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
        self.sessions: list[SimSession] = []
        self.connections = 0  # connections accepted so far
        # server.script_scope "server": one script cursor shared by every connection.
        self._script = ScriptCursor(scenario) if scenario.server.script_scope == "server" else None
        self._log: EventLog | None = None
        self._server: Server | None = None
        self._new_session = asyncio.Event()

    @property
    def url(self) -> str:
        """The ws:// URL of the realtime endpoint (valid once started)."""
        return f"ws://{self.host}:{self.port}{REALTIME_PATH}"

    async def start(self) -> None:
        if self.log_path is not None:
            self._log = EventLog(self.log_path)
        self._server = await serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._process_request,
            select_subprotocol=self._select_subprotocol,
            compression=None,
            max_size=MAX_FRAME_BYTES,
            max_queue=64,
            # The handshake is logged at DEBUG with every header: route it through a logger
            # that redacts Authorization / api-key values, so a client's key never hits a log.
            logger=redacting_logger("vocalis.sim.ws"),
        )
        sockets = list(self._server.sockets)
        self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
            self._server = None
        if self._log is not None:
            self._log.close()
            self._log = None

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

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

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

    # --- handshake --------------------------------------------------------------------------

    def _select_subprotocol(
        self, connection: ServerConnection, offered: Sequence[Subprotocol]
    ) -> Subprotocol | None:
        return Subprotocol("realtime") if "realtime" in offered else None

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        split = urlsplit(request.path)
        if split.path.rstrip("/") != REALTIME_PATH:
            return _json_response(connection, 404, f"Invalid URL (GET {split.path})", "not_found")
        if self.require_auth and not _has_auth(request):
            return _json_response(
                connection,
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                "missing_api_key",
            )
        return None

    # --- connection -------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        query = parse_qs(urlsplit(request.path).query)
        model = (query.get("model") or [self.default_model])[0]
        session = SimSession(
            index=self.connections,
            model=model,
            scenario=self.scenario,
            pace=self.pace,
            log=self._log,
            session_max_seconds=self.session_max_seconds,
            script=self._script,
            max_recorded_events=self.max_recorded_events,
        )
        self.sessions.append(session)
        self.connections += 1
        self._new_session.set()
        self._new_session = asyncio.Event()
        tasks: set[asyncio.Task[None]] = set()
        try:
            async with asyncio.TaskGroup() as group:

                def spawn(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
                    task = group.create_task(coro)
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    return task

                spawn(self._writer(ws, session))
                if self.refuse_beta and request.headers.get("OpenAI-Beta"):
                    session.emit_error(errors.beta_api_shape_disabled())
                    session.close(BETA_CLOSE_CODE, "beta API shape disabled")
                else:
                    delay = self.scenario.server.on_connect_delay_s
                    if delay > 0:
                        await asyncio.sleep(delay)
                    session.start(spawn)
                    if self.session_max_seconds:
                        spawn(self._expire_after(session, self.session_max_seconds))
                await self._reader(ws, session)
                for task in list(tasks):
                    task.cancel()
        finally:
            code = ws.close_code if ws.close_code is not None else 1006
            session.mark_closed(code)
            if self._log is not None:
                self._log.flush()
            self._forget_old_sessions()

    def _forget_old_sessions(self) -> None:
        """Bound memory in long-running servers: keep only the newest closed sessions."""
        limit = self.max_closed_sessions
        if limit is None:
            return
        closed = [s for s in self.sessions if s.closed]
        for old in closed[: max(0, len(closed) - limit)]:
            self.sessions.remove(old)

    async def _reader(self, ws: ServerConnection, session: SimSession) -> None:
        try:
            async for message in ws:
                session.receive(message)
        except ConnectionClosed:
            pass

    async def _writer(self, ws: ServerConnection, session: SimSession) -> None:
        try:
            while True:
                frame = await session.outbox.get()
                if isinstance(frame, str):
                    await ws.send(frame)
                    session.frame_sent()
                elif isinstance(frame, Close):
                    await ws.close(frame.code, frame.reason)
                    return
                elif isinstance(frame, Abort):
                    ws.transport.abort()
                    return
        except ConnectionClosed:
            return

    async def _expire_after(self, session: SimSession, seconds: float) -> None:
        await asyncio.sleep(seconds)
        session.expire()


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
