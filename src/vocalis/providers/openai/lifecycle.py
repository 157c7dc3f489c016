"""The socket half of an OpenAI realtime session: connect, configure, replay, serve, reconnect.

`SocketLifecycle` is the base of `OpenAIRealtimeSession` (realtime.py holds the public
operations). Per socket: a `_Connection` (its backlog); the listener decodes each frame and
hands it to the sans-I/O core, then dispatches what the core produced (no `await` between
the two; with picows it all runs inside the socket's read callback, no task).

Reconnects: on a dropped socket, on `session_expired`, and proactively before the provider's
cap (`max_session_seconds`, once no response is active). Each new socket gets the full
session config, then the history *as heard* replayed as text items. When to retry and when to
give up is `ReconnectPolicy`'s decision (jittered backoff; sessions that die right after
setup count as failures, so a provider that accepts then drops every connection is given up).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from typing import TYPE_CHECKING, Any, TypeVar

from vocalis.conversation.items import ConversationItem
from vocalis.providers.base import (
    ErrorKind,
    OpCompleted,
    OperationError,
    OpFailed,
    OpResult,
    ProviderError,
    ProviderEvent,
    SessionOptions,
    SessionReconnected,
)
from vocalis.providers.openai.appends import InputAppends
from vocalis.providers.openai.connection import _Connection, _Fatal
from vocalis.providers.openai.formats import AudioFormat
from vocalis.providers.openai.frames import decode_server_frame
from vocalis.providers.openai.history import replay_history, unanswered_input
from vocalis.providers.openai.ops import ClientOp
from vocalis.providers.openai.protocol import OpenAIProtocol, Output
from vocalis.providers.openai.session_config import build_session
from vocalis.providers.openai.wire_items import provider_item_id, to_wire_item
from vocalis.providers.reconnect import ReconnectPolicy
from vocalis.providers.router import GenerationRouter
from vocalis.providers.wsclient import (
    HandshakeRejected,
    ProviderSocket,
    SocketError,
    open_socket,
)
from vocalis.utils.channel import Channel
from vocalis.utils.clock import call_later
from vocalis.utils.flag import Flag
from vocalis.utils.logsafe import redacting_logger

if TYPE_CHECKING:
    from vocalis.providers.openai.model import OpenAIRealtimeModel

logger = logging.getLogger("vocalis.providers.openai.realtime")
T = TypeVar("T")
_WS_LOGGER_NAME = "vocalis.providers.openai.ws"


class _Attempt(enum.Enum):
    """A connect attempt that produced no socket: try again, or the session is over."""

    RETRY = "retry"
    STOP = "stop"


class SocketLifecycle:
    """Sockets under one logical session (the session's state is declared here, set there)."""

    _model: OpenAIRealtimeModel
    _options: SessionOptions
    _fmt: AudioFormat
    _core: OpenAIProtocol
    _events: Channel[ProviderEvent]
    _router: GenerationRouter
    _conn: _Connection | None
    _ready: Flag
    _closing: bool
    _main: asyncio.Task[None] | None
    _first: asyncio.Future[None]
    _heard: list[ConversationItem]
    _heard_seq: int
    _replay: list[ConversationItem]
    _replay_unanswered: str | None
    _sent_session: dict[str, Any]
    reconnects: int

    # Provided by the session (realtime.py).
    def _dispatch(self, conn: _Connection, out: Output) -> None:
        raise NotImplementedError

    def _emit_closed(self, reason: str, error: ProviderError | None = None) -> None:
        raise NotImplementedError

    async def _request(self, conn: _Connection, op: ClientOp[T]) -> OpResult[T]:
        raise NotImplementedError

    async def _create(self, conn: _Connection, op: ClientOp[str]) -> OpResult[str]:
        raise NotImplementedError

    async def _start(self) -> None:
        self._main = asyncio.create_task(self._run(), name="openai-realtime-session")
        await self._first

    def _policy(self) -> ReconnectPolicy:
        model = self._model
        return ReconnectPolicy(
            base_s=model.reconnect_backoff_s,
            max_s=model.reconnect_backoff_max_s,
            max_failures=model.max_reconnect_attempts,
            stable_s=model.reconnect_stable_s,
        )

    async def _run(self) -> None:
        reason = "initial"
        policy = self._policy()
        dropped_at: float | None = None  # the model clock when the last socket ended
        clock = self._model.clock
        try:
            while not self._closing:
                await self._back_off(policy)
                opened = await self._connect(policy, replay=reason != "initial")
                if opened is _Attempt.STOP:
                    return
                if opened is _Attempt.RETRY:
                    continue
                conn, replayed = opened
                self._announce_open(reason, replayed, dropped_at)
                opened_at = clock.now()
                reason = await self._serve(conn)
                dropped_at = clock.now()
                policy.session_ended(
                    dropped_at - opened_at, planned=reason in ("session_expired", "max_duration")
                )
                await self._teardown(conn, reason)
                if self._ended_for_good(reason, conn, policy):
                    return
                logger.info("realtime socket ended (%s); reconnecting", reason)
        finally:
            leftover = self._conn
            if leftover is not None:
                await self._teardown(leftover, "closed")
            if not self._first.done():
                self._first.set_exception(
                    OperationError(ErrorKind.CLOSED, "session closed", "closed")
                )
            self._emit_closed("closed")

    async def _back_off(self, policy: ReconnectPolicy) -> None:
        """Wait out the policy's delay after consecutive failures (none on a first try)."""
        delay = policy.delay()
        if delay > 0:
            logger.warning(
                "realtime reconnect after %d consecutive failures; retrying in %.1fs",
                policy.failures,
                delay,
            )
            await self._model.clock.sleep(delay)

    async def _connect(
        self, policy: ReconnectPolicy, *, replay: bool
    ) -> tuple[_Connection, tuple[str, ...]] | _Attempt:
        """One connect attempt: the live socket, or whether to retry or stop.

        A failure before the first socket ever opened fails `start()` (the caller sees it at
        once); after that it counts against the reconnect policy.
        """
        try:
            return await self._open(replay=replay)
        except _Fatal as fatal:
            if not self._first.done():
                self._first.set_exception(OperationError.from_error(fatal.error))
            self._emit_closed("fatal", fatal.error)
            return _Attempt.STOP
        except (OSError, SocketError, TimeoutError, OperationError) as exc:
            if not self._first.done():
                self._first.set_exception(
                    exc
                    if isinstance(exc, OperationError)
                    else OperationError(
                        ErrorKind.UNAVAILABLE, f"connect failed: {exc!r}", "connect_failed"
                    )
                )
                self._emit_closed("connect_failed")
                return _Attempt.STOP
            policy.connect_failed()
            logger.warning("realtime reconnect failed (%s)", type(exc).__name__)
            if policy.exhausted or self._closing:
                self._give_up(f"gave up reconnecting: {exc!r}")
                return _Attempt.STOP
            return _Attempt.RETRY

    def _announce_open(
        self, reason: str, replayed: tuple[str, ...], dropped_at: float | None
    ) -> None:
        """The first socket completes `start()`; every later one is a `SessionReconnected`."""
        if not self._first.done():
            self._first.set_result(None)
            return
        self.reconnects += 1
        # Only an input that made it into the new session, as its last item.
        owed = self._replay_unanswered
        unanswered = owed if replayed and replayed[-1] == owed else None
        self._events.send(
            SessionReconnected(
                reason=reason,
                replayed_item_ids=replayed,
                unanswered_item_id=unanswered,
                outage_s=None if dropped_at is None else self._model.clock.now() - dropped_at,
            )
        )

    def _ended_for_good(self, reason: str, conn: _Connection, policy: ReconnectPolicy) -> bool:
        """After a socket ended: emit the close and return True unless we should reconnect."""
        if reason == "closed" or self._closing:
            self._emit_closed("closed")
            return True
        if reason == "fatal":
            self._emit_closed("fatal", conn.fatal)
            return True
        if not self._model.reconnect:
            self._emit_closed(reason)
            return True
        if policy.exhausted:
            # Every session dies soon after setup: the provider accepts and drops.
            self._give_up(f"{policy.failures} sessions in a row ended within setup")
            return True
        return False

    def _give_up(self, message: str) -> None:
        err = ProviderError(ErrorKind.UNAVAILABLE, message, "reconnect_failed")
        self._emit_closed("reconnect_failed", err)

    async def _open_socket(self) -> ProviderSocket:
        """The WebSocket handshake; a refused key (401/403) is fatal, not retried."""
        model = self._model
        try:
            return await open_socket(
                model.socket_backend,
                model.url,
                model._headers(),
                open_timeout=model.connect_timeout_s,
                max_size=16 * 2**20,
                logger=redacting_logger(_WS_LOGGER_NAME),
            )
        except HandshakeRejected as exc:
            if exc.status in (401, 403):
                raise _Fatal(
                    ProviderError(
                        ErrorKind.FATAL,
                        f"handshake rejected (HTTP {exc.status})",
                        "invalid_api_key",
                    )
                ) from None
            raise

    async def _open(self, *, replay: bool) -> tuple[_Connection, tuple[str, ...]]:
        """Open a socket, configure the session, replay history; returns the live connection."""
        model = self._model
        ws = await self._open_socket()
        self._core.connection_opened()
        conn = _Connection(
            ws,
            appends=InputAppends(
                self._fmt.encode_b64, model.input_chunk_samples, model.quiet_input_chunk_samples
            ),
            hold_s=model.input_chunk_ms / 1000.0,
            quiet_hold_s=model.quiet_input_chunk_ms / 1000.0,
        )
        self._conn = conn
        try:
            self._listen(conn)
            await asyncio.wait_for(asyncio.shield(conn.session_created), model.connect_timeout_s)
            session = build_session(self._options, dialect=model.dialect, audio_format=self._fmt)
            result = await self._request(conn, self._core.session_update(session))
            if isinstance(result, OpFailed):
                if result.error.fatal:
                    raise _Fatal(result.error)
                raise OperationError.from_error(result.error)
            self._sent_session = session
            replayed: tuple[str, ...] = ()
            if replay:
                replayed = await self._replay_into(conn)
            if not conn.alive:
                raise OperationError(
                    ErrorKind.DISCONNECTED, "socket closed during setup", "disconnected"
                )
        except BaseException:
            await self._teardown(conn, "setup_failed")
            if conn.fatal is not None:
                raise _Fatal(conn.fatal) from None
            raise
        conn.ready = True
        self._ready.set()
        logger.info("realtime session connected (%s, model %s)", model.dialect, model.model)
        return conn, replayed

    async def _replay_into(self, conn: _Connection) -> tuple[str, ...]:
        items = self._replay
        ops = [
            self._core.create(
                to_wire_item(item, provider_item_id(item.id)),
                local_id=item.id,
                previous_item_id=None,
            )
            for item in items
        ]
        results = await asyncio.gather(*(self._create(conn, op) for op in ops))
        replayed: list[str] = []
        for item, result in zip(items, results, strict=True):
            if isinstance(result, OpCompleted):
                replayed.append(item.id)
            elif result.error.kind is not ErrorKind.DISCONNECTED:
                logger.warning(
                    "replay of %s rejected (%s)", item.type, result.error.code or "no code"
                )
        ok = set(replayed)
        self._heard = [item for item in items if item.id in ok]
        self._heard_seq = self._core.mirror.seq
        return tuple(replayed)

    async def _serve(self, conn: _Connection) -> str:
        """Until the socket ends; recycled before the provider's session cap (a timer, not
        a task, for the hour until then: `call_later`)."""
        model = self._model
        timer = call_later(model.clock, model.max_session_seconds, lambda: self._recycle(conn))
        try:
            return await asyncio.shield(conn.ended)
        finally:
            timer.cancel()

    def _recycle(self, conn: _Connection) -> None:
        """The session cap is near: end the socket now if idle, else once it is."""
        if not conn.alive:
            return
        if self._core.idle:
            conn.end("max_duration")
            return
        # Rare (once per socket, only when the cap falls inside a response): a task waits.
        task = asyncio.create_task(self._recycle_when_idle(conn), name="openai-realtime-recycle")
        conn.tasks.append(task)

    async def _recycle_when_idle(self, conn: _Connection) -> None:
        """Reconnect at a moment no response is running."""
        while conn.alive and not self._core.idle:
            generations = self._router.active
            if generations:
                await asyncio.wait([g.done for g in generations])
            else:
                await asyncio.sleep(0.02)  # a requested response has not started yet
        conn.end("max_duration")

    def _listen(self, conn: _Connection) -> None:
        """Every server event to the core and what it produces dispatched, until the socket
        closes; then the connection ends and its in-flight work is lost (`ProviderSocket.
        listen`: on picows inside the socket's callbacks, no receive task per session)."""
        core = self._core

        def on_message(raw: str | bytes) -> None:
            if not conn.alive:  # ended (expired, fatal): nothing more of this socket
                return
            event = decode_server_frame(raw)
            if event is None:
                core.receive(None)  # counted as malformed by the core's limiter
                return
            for out in core.receive(event):
                self._dispatch(conn, out)

        def on_end() -> None:
            conn.end("session_expired" if conn.expired else "dropped")
            self._lose(conn, conn.ended.result())

        conn.ws.listen(on_message, on_end)

    def _lose(self, conn: _Connection, reason: str) -> None:
        """The socket is gone: end in-flight work now (not after a reconnect finished)."""
        if conn.lost:
            return
        conn.lost = True
        conn.end(reason)
        if self._conn is conn:
            self._conn = None
            self._ready.clear()
        # Snapshot what to replay while the old mirror still describes the old session (a
        # socket lost during setup keeps the previous snapshot: its mirror is partial).
        if conn.ready:
            self._replay = replay_history(self._core, self._heard, self._heard_seq)
            self._replay_unanswered = unanswered_input(self._core, self._replay)
        for out in self._core.connection_lost(reason):
            self._dispatch(conn, out)

    async def _teardown(self, conn: _Connection, reason: str) -> None:
        self._lose(conn, reason)
        current = asyncio.current_task()
        for task in conn.tasks:
            if task is not current:
                task.cancel()
        for task in conn.tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        await conn.stop_sending()
        with contextlib.suppress(Exception):
            await conn.ws.close()
