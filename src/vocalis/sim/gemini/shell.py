"""The thin WebSocket shell of the Gemini dialect: Starlette routes, one loop per connection.

Each accepted socket gets a :class:`~vocalis.sim.gemini.session.GeminiSimSession`; this
module only moves frames, sleeps until the session's next deadline and applies its close
decisions. Per server it keeps a :class:`GeminiSims` (resumption handles outlive a
connection; tests find every session there)::

    async with SimServer(dialects=[DIALECT], tls=cert) as server:
        sims = sessions_of(server)
        conn = await sims.wait_for_connection(1)
        await conn.wait_for(lambda s: not s.generating)
        conn.session.history.summary()     # what the Gemini server holds
        conn.go_away(5.0); conn.drop()     # lifetime and network faults
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from vocalis.sim.brain import ScriptCursor
from vocalis.sim.gemini.resumption import ResumptionStore
from vocalis.sim.gemini.session import Close, GeminiSimSession, Outgoing, Send, SessionLimits
from vocalis.sim.outbox import ABNORMAL_CLOSE, write_frame

if TYPE_CHECKING:
    from vocalis.sim.server import SimServer

PATH = "/ws/google.ai.generativelanguage.{version}.GenerativeService.BidiGenerateContent"
CONSTRAINED_PATH = PATH + "Constrained"
_EOF = object()


class GeminiConnection:
    """One socket's session, plus waiters and fault hooks for tests."""

    def __init__(self, session: GeminiSimSession) -> None:
        self.session = session
        self._inbox: asyncio.Queue[Any] = asyncio.Queue()
        self._changed = asyncio.Condition()
        self.close_code: int | None = None

    async def wait_for(
        self, predicate: Callable[[GeminiSimSession], bool], within: float = 10.0
    ) -> GeminiSimSession:
        """Wait until ``predicate(session)`` holds (re-checked after every frame both ways)."""
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: predicate(self.session))
        return self.session

    def go_away(self, seconds_left: float) -> None:
        """Send ``goAway`` now and close the connection ``seconds_left`` later."""
        self._inbox.put_nowait(("go_away", seconds_left))

    def drop(self) -> None:
        """Cut the TCP link without a close frame (a network failure)."""
        self._inbox.put_nowait(("drop", 0.0))

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()


class GeminiSims:
    """The Gemini side of one SimServer: handles, script cursor, connections."""

    def __init__(self, server: SimServer) -> None:
        scenario = server.scenario
        self.resumption = ResumptionStore()
        # One Gemini conversation spans connections (resumed, re-seeded after a barge-in), so
        # the script runs once per server unless a scenario asks for `connection` explicitly.
        explicit = "script_scope" in scenario.server.model_fields_set
        shared = scenario.server.script_scope == "server" or not explicit
        self.cursor = ScriptCursor(scenario) if shared else None
        self.connections: list[GeminiConnection] = []
        self.accepted = 0  # connections accepted so far (`connections` may forget old ones)
        self._new = asyncio.Event()

    @property
    def sessions(self) -> list[GeminiSimSession]:
        return [conn.session for conn in self.connections]

    async def wait_for_connection(self, n: int = 1, within: float = 10.0) -> GeminiConnection:
        """The ``n``-th connection (1-based) once it was accepted."""
        async with asyncio.timeout(within):
            while self.accepted < n:
                event = self._new
                await event.wait()
        for conn in self.connections:
            if conn.session.index == n - 1:
                return conn
        raise LookupError(f"connection {n} was forgotten (max_closed_sessions)")

    def _add(self, conn: GeminiConnection, keep_closed: int | None) -> None:
        self.connections.append(conn)
        self.accepted += 1
        self._new.set()
        self._new = asyncio.Event()
        if keep_closed is not None:  # a long-running server keeps only the newest ended ones
            closed = [c for c in self.connections if c.session.closed is not None]
            for old in closed[: max(0, len(closed) - keep_closed)]:
                self.connections.remove(old)


_SIMS: weakref.WeakKeyDictionary[SimServer, GeminiSims] = weakref.WeakKeyDictionary()


def sessions_of(server: SimServer) -> GeminiSims:
    """The Gemini sessions of ``server`` (created on first use)."""
    sims = _SIMS.get(server)
    if sims is None:
        sims = _SIMS[server] = GeminiSims(server)
    return sims


def _log_to(server: SimServer, index: int) -> Callable[[str, dict[str, Any]], None] | None:
    """Each message of connection ``index`` into the server's JSONL event log (if any)."""
    log = server.event_log
    if log is None:
        return None
    name = f"gemini-{index}"
    return lambda direction, message: log.write(name, direction, message)


def _has_key(websocket: WebSocket) -> bool:
    headers = websocket.headers
    return bool(
        headers.get("x-goog-api-key")
        or websocket.query_params.get("key")
        or headers.get("authorization", "").split(" ", 1)[-1].strip()
    )


def routes(server: SimServer) -> list[BaseRoute]:
    async def plain(websocket: WebSocket) -> None:
        await _serve(server, websocket, constrained=False)

    async def constrained(websocket: WebSocket) -> None:
        await _serve(server, websocket, constrained=True)

    return [WebSocketRoute(PATH, plain), WebSocketRoute(CONSTRAINED_PATH, constrained)]


async def _serve(server: SimServer, websocket: WebSocket, *, constrained: bool) -> None:
    sims = sessions_of(server)
    await websocket.accept()
    loop = asyncio.get_running_loop()
    max_s = server.session_max_seconds
    session = GeminiSimSession(
        sims.accepted,
        scenario=server.scenario,
        now=loop.time(),
        pace=server.pace,
        resumption=sims.resumption,
        cursor=sims.cursor,
        limits=SessionLimits(max_s, min(5.0, max_s / 2)) if max_s else SessionLimits(),
        constrained=constrained,
        max_recorded=server.max_recorded_events,
        recorder=_log_to(server, sims.accepted),
    )
    conn = GeminiConnection(session)
    sims._add(conn, server.max_closed_sessions)
    if server.require_auth and not _has_key(websocket):
        # The service accepts the socket and refuses the unauthenticated call with 1008.
        session.closed = Close(
            1008, "Method doesn't allow unregistered callers. Please use API Key."
        )
        await websocket.close(1008, session.closed.reason)
        conn.close_code = 1008
        await conn._notify()
        return
    delay = server.scenario.server.on_connect_delay_s
    if delay > 0:
        await asyncio.sleep(delay)  # a slow service: setupComplete comes this much later
    reader = asyncio.create_task(_read(websocket, conn))
    try:
        conn.close_code = await _loop(websocket, conn, server)
    finally:
        reader.cancel()
        session.mark_closed(conn.close_code or ABNORMAL_CLOSE)
        if server.event_log is not None:
            server.event_log.write(f"gemini-{session.index}", "state", session.history.summary())
            server.event_log.flush()
        await conn._notify()


async def _read(websocket: WebSocket, conn: GeminiConnection) -> None:
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                conn.close_code = int(message.get("code") or ABNORMAL_CLOSE)
                break
            text = message.get("text")
            conn._inbox.put_nowait(text if text is not None else message.get("bytes") or b"")
    except (WebSocketDisconnect, RuntimeError, OSError):
        pass
    conn._inbox.put_nowait(_EOF)


async def _loop(websocket: WebSocket, conn: GeminiConnection, server: SimServer) -> int | None:
    """Feed frames and time to the session until a close decision or the peer leaves."""
    loop = asyncio.get_running_loop()
    session = conn.session
    while True:
        deadline = session.next_deadline()
        try:
            async with asyncio.timeout_at(deadline):
                item = await conn._inbox.get()
        except TimeoutError:
            item = None
        now = loop.time()
        if item is _EOF:
            return conn.close_code
        if item is None:
            outgoing = session.poll(now)
        elif isinstance(item, tuple):
            kind, seconds = item
            outgoing = session.go_away(now, seconds) if kind == "go_away" else session.drop()
        else:
            outgoing = session.receive(item, now)
        code = await _apply(websocket, outgoing)
        await conn._notify()
        if code is not None:
            return code


async def _apply(websocket: WebSocket, outgoing: list[Outgoing]) -> int | None:
    """Send frames in order; a close or abort ends the connection (its code is returned)."""
    try:
        for out in outgoing:
            code = await write_frame(websocket, out.text if isinstance(out, Send) else out)
            if code is not None:
                return code
    except (WebSocketDisconnect, RuntimeError, OSError):
        return ABNORMAL_CLOSE
    return None
