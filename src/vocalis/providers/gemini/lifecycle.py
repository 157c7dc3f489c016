"""The connection half of a Gemini Live session: open, serve, switch, recover, re-seed.

`SocketLifecycle` is the base of `GeminiRealtimeSession` (realtime.py holds the public
operations). Sockets come and go under one logical session:

* **drop** (the socket died): every stream ends ``disconnected``, then a new connection
  *resumes* the last ``sessionResumptionUpdate`` handle (or, without one, is seeded with the
  heard history), with backoff (`ReconnectPolicy`); `SessionReconnected` follows;
* **goAway** (the service will end the connection): a new connection resumes the handle at
  the next idle moment, before the time runs out; caller audio sent meanwhile is replayed;
* **re-seed** (the heard contract, :mod:`~vocalis.providers.gemini.heard`): at a heard
  checkpoint where the service holds words the caller never heard, a fresh connection is
  seeded with the heard history and the caller's audio since the interrupted turn began is
  replayed into it, so an utterance in progress is heard whole. At most
  ``max_reseeds_per_minute`` (`ReseedBudget`): a peer producing unheard turns without end
  must not make the client reconnect without end.

Per socket: a `Connection` with its send queue, a reader and a writer (connection.py); the
reader hands each message to the sans-I/O core and dispatches what it produced, with no
``await`` between the two.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vocalis.conversation.items import ConversationItem
from vocalis.providers.base import (
    ErrorKind,
    Generation,
    Modality,
    OperationError,
    ProviderError,
    ProviderEvent,
    SessionClosed,
    SessionOptions,
    SessionReconnected,
)
from vocalis.providers.core_events import CORE_EVENT_TYPES, ResponseStarted
from vocalis.providers.gemini import wire
from vocalis.providers.gemini.connection import Connection, drain, open_socket, pump
from vocalis.providers.gemini.errors import close_error
from vocalis.providers.gemini.heard import ReseedBudget, record_of
from vocalis.providers.gemini.protocol import GeminiProtocol, GoAway, Output, SetupDone
from vocalis.providers.reconnect import ReconnectPolicy
from vocalis.providers.router import GenerationRouter
from vocalis.utils.channel import Channel
from vocalis.utils.logsafe import WarnLimiter

if TYPE_CHECKING:
    from vocalis.providers.gemini.model import GeminiRealtimeModel

logger = logging.getLogger("vocalis.providers.gemini.realtime")


class SocketLifecycle:
    """Connections under one logical Gemini session, and the state they share with it."""

    def __init__(self, model: GeminiRealtimeModel, options: SessionOptions) -> None:
        self._model = model
        self._options = options
        modality: Modality = "audio" if "audio" in options.output_modalities else "text"
        self.protocol = GeminiProtocol(modality=modality, limits=model.limits)
        self._manual = options.turn_detection is None
        self._events: Channel[ProviderEvent] = Channel()
        self.router = GenerationRouter(self._events.send)
        self._warn = WarnLimiter(logger)
        self._conn: Connection | None = None
        self._conn_count = 0
        self._paused = False
        self._switch_lock = asyncio.Lock()
        self._idle = asyncio.Event()  # set while no model turn runs or is expected
        self._waiters: dict[str, asyncio.Future[Generation]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._supervisor: asyncio.Task[None] | None = None
        self._closing = False
        self._closed_emitted = False
        self._heard: list[ConversationItem] = []
        self._corrected: set[str] = set()  # cut turns a note told the model about
        self._reseed_budget = ReseedBudget(model.max_reseeds_per_minute)
        self._policy = ReconnectPolicy(
            base_s=model.reconnect_backoff_s,
            max_s=model.reconnect_backoff_max_s,
            max_failures=model.max_reconnect_attempts,
        )
        self._connected_at = 0.0
        # What the heard contract cost (read by tests, bench and the closing notes).
        self.reconnects = 0
        self.reseeds = 0
        self.seeded_turns = 0

    async def start(self) -> None:
        self._conn = await self._open(handle=None, seed=None)
        self._supervisor = asyncio.create_task(self._supervise(), name="gemini-supervisor")

    def _require_conn(self) -> Connection:
        conn = self._conn
        if self._closing or conn is None:
            raise OperationError(ErrorKind.CLOSED, "session closed", "closed")
        if not conn.alive:
            raise OperationError(ErrorKind.DISCONNECTED, "not connected", "disconnected")
        return conn

    async def _open(
        self, *, handle: str | None, seed: Sequence[ConversationItem] | None
    ) -> Connection:
        model = self._model
        setup = model.setup_for(self._options, handle)
        ws, first = await open_socket(
            model.url,
            model.headers(),
            setup,
            ssl_context=model.ssl_context,
            timeout_s=model.connect_timeout_s,
        )
        self._conn_count += 1
        self._connected_at = asyncio.get_running_loop().time()
        conn = Connection(ws, self._conn_count)
        outputs = self.protocol.receive(first)
        if not any(isinstance(out, SetupDone) for out in outputs):
            await ws.close(1002, "expected setupComplete")
            raise OperationError(
                ErrorKind.SERVER, "the server did not confirm the setup", "no_setup_complete"
            )
        if handle is not None:
            self.protocol.record.resumed(handle)
        if seed is not None:
            turns = wire.history_turns(seed)
            if turns:
                conn.send(wire.dumps(wire.client_content(turns, turn_complete=False)))
            self.seeded_turns += len(turns)
            self.protocol.record.reseeded(record_of(seed))
        conn.reader = self._spawn(pump(conn, self._on_message), f"gemini-recv-{conn.index}")
        conn.writer = self._spawn(drain(conn), f"gemini-send-{conn.index}")
        return conn

    # ================================================================= switching

    async def _resume(self) -> bool:
        """A new connection with the same history: the resumption handle, else the heard
        history as seed (new options, a planned resume after ``goAway``)."""
        handle = self.protocol.record.resume_handle
        return await self._switch(
            handle=handle, seed=None if handle else self._heard, replay_from=None
        )

    def _reseed_allowed(self, now: float) -> bool:
        return self._reseed_budget.allows(now)

    async def _reseed(self, items: Sequence[ConversationItem], now: float) -> None:
        """A fresh connection holding exactly ``items``; the caller's audio since the last
        response began is replayed (an utterance that barged in is heard whole)."""
        self._reseed_budget.spend(now)
        replay_from = self.protocol.generation_input_ms
        if await self._switch(handle=None, seed=items, replay_from=replay_from):
            self.reseeds += 1
            self._corrected.clear()

    async def _switch(
        self,
        *,
        handle: str | None,
        seed: Sequence[ConversationItem] | None,
        replay_from: float | None,
    ) -> bool:
        """Replace the connection (re-seed, planned resume, new options) without losing audio;
        ``False`` (reported as a `ProviderError`) when the new one could not be opened."""
        async with self._switch_lock:
            if self._closing:
                return False  # a checkpoint during the close: no new socket nobody closes
            old = self._conn
            start = self.protocol.input.end_ms if replay_from is None else replay_from
            self._paused = True
            try:
                new = await self._open(handle=handle, seed=seed)
            except OperationError as exc:
                self._events.send(
                    ProviderError(
                        exc.kind, f"connection switch failed: {exc.message}", code=exc.code
                    )
                )
                self._paused = False
                return False
            self._conn = new
            if old is not None:
                await old.retire()
            for out in self.protocol.connection_replaced():
                self._dispatch(new, out)
            self._fail_waiters()
            if not self._manual:
                for chunk in self.protocol.input.since(start):
                    new.send(wire.audio_frame(chunk))
            self._paused = False
            return True

    async def _resume_before(self, conn: Connection, seconds_left: float) -> None:
        """After ``goAway``: switch at the next idle moment, at the latest 1 s before the end."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, seconds_left - 1.0)):
                await self._idle.wait()
        if conn is not self._conn or self._closing:
            return
        await self._resume()
        self.reconnects += 1

    # ================================================================= losses

    async def _supervise(self) -> None:
        """Wait for the live connection to end; reconnect or close on a loss."""
        while not self._closing:
            conn = self._conn
            assert conn is not None
            code, reason = await asyncio.shield(conn.ended)
            if conn.retired or self._closing:
                continue
            await self._recover(conn, code, reason)

    async def _recover(self, conn: Connection, code: int | None, reason: str) -> None:
        error = conn.fatal or close_error(code, reason, after_go_away=conn.go_away)
        self._end_streams()
        if conn.fatal is not None:
            await conn.retire()  # ended on this side: the socket is still open
        if error.fatal or not self._model.reconnect:
            self._emit_closed("fatal" if error.fatal else "disconnected", error)
            self._closing = True
            return
        loop = asyncio.get_running_loop()
        self._policy.session_ended(loop.time() - self._connected_at, planned=conn.go_away)
        while not self._policy.exhausted:
            await asyncio.sleep(self._policy.delay())
            handle = self.protocol.record.resume_handle
            try:
                new = await self._open(handle=handle, seed=None if handle else self._heard)
            except OperationError as exc:
                if exc.kind is ErrorKind.FATAL:
                    self._emit_closed("fatal", ProviderError(exc.kind, exc.message, code=exc.code))
                    self._closing = True
                    return
                if handle is not None and exc.kind is ErrorKind.INVALID:
                    self.protocol.record.resume_handle = None  # the handle expired: seed instead
                self._policy.connect_failed()
                continue
            self._conn = new
            self.reconnects += 1
            self.protocol.input.reset()  # a new provider session counts input from zero
            reason_text = "session_expired" if conn.go_away else "dropped"
            replayed = tuple(t.item_id for t in self.protocol.server_record)
            self._events.send(SessionReconnected(reason_text, replayed))
            return
        self._emit_closed("reconnect_failed", error)
        self._closing = True

    def _end_streams(self) -> None:
        for out in self.protocol.connection_lost():
            self._dispatch(self._conn, out)
        self._fail_waiters()

    def _fail_waiters(self) -> None:
        """Reply requests waiting on a connection that is gone fail now (never hang)."""
        for future in self._waiters.values():
            if not future.done():
                future.set_exception(
                    OperationError(ErrorKind.DISCONNECTED, "connection lost", "disconnected")
                )

    # ================================================================= server messages

    def _on_message(self, conn: Connection, message: Any) -> None:
        if not isinstance(message, dict):
            self._warn.warn("not_an_object", "a server frame that is not a JSON object was ignored")
            return
        holding = self.protocol.holding
        try:
            outputs = self.protocol.receive(message)
        except (ValueError, TypeError) as exc:  # malformed content: reported, never fatal
            self._warn.warn("malformed", "a malformed server message was ignored: %s", exc)
            return
        for out in outputs:
            self._dispatch(conn, out)
        if self.protocol.holding and not holding:
            self._spawn(self._release_later(), "gemini-release-held")
        if self.protocol.idle:
            self._idle.set()
        else:
            self._idle.clear()

    def _dispatch(self, conn: Connection | None, out: Output) -> None:
        if isinstance(out, CORE_EVENT_TYPES):
            self.router.route(out)
            if isinstance(out, ResponseStarted) and out.request_id is not None:
                waiter = self._waiters.get(out.request_id)
                generation = self.router.claim(out.request_id)
                if waiter is not None and generation is not None and not waiter.done():
                    waiter.set_result(generation)
            return
        if isinstance(out, SetupDone):
            return
        if isinstance(out, GoAway):
            if conn is not None:
                conn.go_away = True
                self._spawn(self._resume_before(conn, out.seconds_left), "gemini-go-away")
            return
        if isinstance(out, ProviderError) and out.fatal and conn is not None:
            conn.fatal = out  # the core ends the call (the item bound): the close says why
            conn.end(None, "fatal")
        self._events.send(out)

    async def _release_later(self) -> None:
        """A held-back answer nobody asked for within the grace period goes to the runtime."""
        await asyncio.sleep(self._model.continuation_grace_s)
        for event in self.protocol.claim_held(None):
            self.router.route(event)

    # ================================================================= helpers

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _emit_closed(self, reason: str, error: ProviderError | None = None) -> None:
        if self._closed_emitted:
            return
        self._closed_emitted = True
        self._events.send(SessionClosed(reason, error))
        self._events.close()
