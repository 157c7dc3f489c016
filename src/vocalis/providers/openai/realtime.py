"""OpenAI Realtime GA over WebSocket: the thin I/O shell around `OpenAIProtocol`.

What lives here and nowhere else: sockets, tasks, futures, timeouts, reconnects.

* One `_Connection` per socket owns its send queue and its two tasks. When a socket dies its
  queue dies with it: events queued for a dead socket are never sent on the next one (a stale
  `response.create` or `truncate` replayed into a fresh session would corrupt it).
* Reconnect on a dropped socket, on `session_expired`, and proactively before the 60-minute
  cap (`max_session_seconds`, waiting until no response is active): new socket, the full
  session config again, then the history *as heard* replayed as text items. The in-flight
  `Generation` ends with status "disconnected" at the moment the old socket is lost, so the
  runtime's ledger treats what it did not play as unheard. Fatal codes close the session.
* `append_audio` is the hot path: one base64 call and one string concatenation per frame,
  no logging, no JSON encoder.
* The API key never reaches a log line: the WebSocket library logs through a redacting logger
  and our own messages never include headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar, cast

import numpy as np
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from vocalis.conversation.items import (
    ConversationItem,
    FunctionCallOutputItem,
)
from vocalis.providers.base import (
    Capabilities,
    ErrorKind,
    Generation,
    Modality,
    OpCompleted,
    OperationError,
    OpFailed,
    OpResult,
    ProviderError,
    ProviderEvent,
    RealtimeSession,
    SessionClosed,
    SessionOptions,
    SessionReconnected,
)
from vocalis.providers.core_events import CORE_EVENT_TYPES
from vocalis.providers.openai.connection import _Connection, _Fatal
from vocalis.providers.openai.errors import local_error
from vocalis.providers.openai.history import plan_history_ops, replay_history, unanswered_input
from vocalis.providers.openai.mirror import ConversationMirror
from vocalis.providers.openai.model import OpenAIRealtimeModel
from vocalis.providers.openai.ops import ClientOp, Send, Skip
from vocalis.providers.openai.protocol import OpenAIProtocol, Output, SessionCreated
from vocalis.providers.openai.session_config import (
    build_session,
    session_diff,
    tool_choice_to_wire,
)
from vocalis.providers.openai.wire_items import provider_item_id, to_wire_item
from vocalis.providers.reconnect import ReconnectPolicy
from vocalis.providers.router import GenerationRouter
from vocalis.utils.channel import Channel
from vocalis.utils.logsafe import redacting_logger

__all__ = ["OpenAIRealtimeModel", "OpenAIRealtimeSession", "decode_server_frame"]

logger = logging.getLogger(__name__)
T = TypeVar("T")
_WS_LOGGER_NAME = "vocalis.providers.openai.ws"

# The hot path builds this event by concatenation (no JSON encoder per frame).
_APPEND_PREFIX = '{"type":"input_audio_buffer.append","audio":"'
_APPEND_SUFFIX = '"}'


def decode_server_frame(raw: str | bytes) -> Any | None:
    """One server frame as JSON, or None when it is not JSON at all.

    `RecursionError` counts as "not JSON": a frame of nested brackets (`[[[[…`, cheap inside
    the 16 MiB frame limit) exceeds the decoder's recursion limit, and letting that escape
    killed the receive loop — the reply was cut and the session reconnected (found by
    bench/fuzz.py). `NaN`/`Infinity` are refused as well.
    """
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None


def _reject_constant(name: str) -> Any:
    """`NaN`/`Infinity` are not JSON (RFC 8259); Python's decoder accepts them by default."""
    raise ValueError(f"non-standard JSON constant {name}")


# --------------------------------------------------------------------------- connection


class OpenAIRealtimeSession(RealtimeSession):
    """One logical realtime session; sockets come and go underneath (see module doc)."""

    def __init__(self, model: OpenAIRealtimeModel, options: SessionOptions) -> None:
        self._model = model
        self._options = options
        self._fmt = model.audio_format
        self._core = OpenAIProtocol(
            audio_format=self._fmt,
            server_vad=options.turn_detection is not None,
            output_audio="audio" in options.output_modalities,
            limits=model.limits,
        )
        self._events: Channel[ProviderEvent] = Channel()
        self._router = GenerationRouter(self._events.send)
        self._ops: dict[str, asyncio.Future[OpResult[object]]] = {}
        self._conn: _Connection | None = None
        self._ready = asyncio.Event()
        self._closed_event = asyncio.Event()
        self._closing = False
        self._closed_emitted = False
        self._main: asyncio.Task[None] | None = None
        self._first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # The heard history last given by the runtime, and the mirror position at that time.
        self._heard: list[ConversationItem] = []
        self._heard_seq = 0
        # One sync at a time: a sync plans from the mirror, which learns of its creates only
        # when the server confirms them, so two overlapping syncs would create an item twice.
        self._sync_lock = asyncio.Lock()
        self._replay: list[ConversationItem] = []
        self._replay_unanswered: str | None = None
        self._sent_session: dict[str, Any] = {}
        self._ids = itertools.count(1)
        self.dropped_audio_samples = 0
        self.reconnects = 0

    # ================================================================= public API

    @property
    def capabilities(self) -> Capabilities:
        return self._model.capabilities

    @property
    def mirror(self) -> ConversationMirror:
        """The local mirror of the provider conversation (read-only use)."""
        return self._core.mirror

    @property
    def options(self) -> SessionOptions:
        return self._options

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    async def events(self) -> AsyncIterator[ProviderEvent]:
        async for event in self._events:
            yield event

    def append_audio(self, samples: np.ndarray) -> None:
        conn = self._conn
        if conn is None or not self._ready.is_set():
            # Between sockets there is nowhere to send audio; it is counted, not queued
            # (queued input would be replayed into the next session out of context).
            self.dropped_audio_samples += len(samples)
            return
        conn.queue.put_nowait(_APPEND_PREFIX + self._fmt.encode_b64(samples) + _APPEND_SUFFIX)

    async def update_options(self, options: SessionOptions) -> None:
        conn = await self._wait_ready()
        new = build_session(options, dialect=self._model.dialect, audio_format=self._fmt)
        # Send only what changed: re-sending an unchanged voice after audio was produced is
        # rejected by some servers (`cannot_update_voice`).
        delta = session_diff(self._sent_session, new)
        result = await self._request(conn, self._core.session_update(delta))
        if isinstance(result, OpFailed):
            # GA applies an update atomically: a rejected one changed nothing.
            raise OperationError.from_error(result.error)
        self._options = options
        self._core.server_vad = options.turn_detection is not None
        self._core.output_audio = "audio" in options.output_modalities
        self._sent_session = new

    async def commit_audio(self) -> None:
        await self._fire_and_report(lambda: self._core.commit())

    async def clear_audio(self) -> None:
        await self._fire_and_report(lambda: self._core.clear())

    async def generate_reply(
        self,
        *,
        instructions: str | None = None,
        tool_choice: str | None = None,
        output_modalities: Sequence[Modality] | None = None,
    ) -> Generation:
        """Request a response; returns its `Generation` once `response.created` matched.

        `instructions` are *added* to the session instructions for this reply (OpenAI's
        per-response instructions replace the session's, which would drop the persona).
        """
        conn = await self._wait_ready()
        body: dict[str, Any] = {}
        if instructions:
            base = self._options.instructions
            body["instructions"] = f"{base}\n\n{instructions}" if base else instructions
        if tool_choice is not None:
            body["tool_choice"] = tool_choice_to_wire(tool_choice)
        if output_modalities is not None:
            body["output_modalities"] = ["audio"] if "audio" in output_modalities else ["text"]
        op = self._core.response_create(body)
        self._router.expect(op.op_id)
        try:
            result = await self._request(conn, op)
        finally:
            generation = self._router.claim(op.op_id)
        if isinstance(result, OpFailed):
            raise OperationError.from_error(result.error)
        if generation is None:  # completed without its response: a core bug, never silent
            raise OperationError(ErrorKind.REJECTED, f"no response for {op.op_id}")
        return generation

    async def cancel_response(self, response_id: str | None = None) -> None:
        conn = self._conn
        if conn is None or not self._ready.is_set():
            return  # nothing can be running on a socket that does not exist
        conn.send_event(self._core.response_cancel(response_id))

    async def truncate(self, item_id: str, audio_end_ms: float) -> None:
        """See `RealtimeSession.truncate`; a rejection is reported as a `ProviderError` event."""
        try:
            conn = await self._wait_ready()
        except OperationError:
            return
        decision = self._core.truncate(item_id, audio_end_ms)
        await self._run_edit(conn, decision, item_id)

    async def delete_item(self, item_id: str) -> None:
        try:
            conn = await self._wait_ready()
        except OperationError:
            return
        await self._run_edit(conn, self._core.delete(item_id), item_id)

    async def create_item(self, item: ConversationItem, previous_item_id: str | None = None) -> str:
        conn = await self._wait_ready()
        previous = self._core.resolve_id(previous_item_id) if previous_item_id else None
        op = self._core.create(
            to_wire_item(item, provider_item_id(item.id)),
            local_id=item.id,
            previous_item_id=previous,
        )
        result = await self._request(conn, op)
        if isinstance(result, OpFailed):
            raise OperationError.from_error(result.error)
        return result.value

    async def send_tool_output(self, call_id: str, output: str) -> str:
        item = FunctionCallOutputItem(
            id=f"vc_out_{next(self._ids)}", call_id=call_id, output=output
        )
        return await self.create_item(item)

    async def sync_history(self, items: Sequence[ConversationItem]) -> None:
        """Make the provider conversation equal `items` (and remember them for replays).

        Audio items the provider holds are never rewritten as text (their audio is the truth;
        use `truncate`). Items of a running response and items newer than anything `items`
        refers to are never deleted: they are newer than the caller's view.
        """
        async with self._sync_lock:
            conn = await self._wait_ready()
            self._heard = list(items)
            self._heard_seq = self._core.mirror.seq
            ops = plan_history_ops(self._core, list(items))
            if not ops:
                return
            results = await asyncio.gather(*(self._request(conn, op) for op in ops))
        for result in results:
            self._report_failure(result)

    async def aclose(self) -> None:
        self._closing = True
        conn = self._conn
        if conn is not None:
            conn.end("closed")
        main = self._main
        if main is not None and not main.done():
            if conn is None:
                main.cancel()  # between sockets (backoff or connecting): nothing to finish
            with contextlib.suppress(asyncio.CancelledError):
                try:
                    await asyncio.wait_for(asyncio.shield(main), 5.0)
                except TimeoutError:
                    main.cancel()
                    await main
        self._emit_closed("closed")

    # ================================================================= plumbing

    async def _wait_ready(self) -> _Connection:
        if self._ready.is_set() and self._conn is not None:
            return self._conn
        if self._closed_event.is_set() or self._closing:
            raise OperationError(ErrorKind.CLOSED, "the realtime session is closed", "closed")
        ready = asyncio.ensure_future(self._ready.wait())
        closed = asyncio.ensure_future(self._closed_event.wait())
        timeout = self._model.connect_timeout_s * 2 + self._model.reconnect_backoff_max_s
        try:
            await asyncio.wait({ready, closed}, timeout=timeout, return_when="FIRST_COMPLETED")
        finally:
            ready.cancel()
            closed.cancel()
        if self._ready.is_set() and self._conn is not None:
            return self._conn
        raise OperationError(
            ErrorKind.CLOSED, "the realtime session is not connected", "not_connected"
        )

    async def _request(self, conn: _Connection, op: ClientOp[T]) -> OpResult[T]:
        """Send `op` and wait for its result (a timeout becomes an `OpFailed`)."""
        future: asyncio.Future[OpResult[object]] = asyncio.get_running_loop().create_future()
        self._ops[op.op_id] = future
        conn.send_event(op.event)
        try:
            # The core completes `op` with the value type `ClientOp[T]` promises.
            return cast("OpResult[T]", await asyncio.wait_for(future, self._model.op_timeout_s))
        except TimeoutError:
            self._ops.pop(op.op_id, None)
            if op.kind == "response.create":
                self._core.discard_request(op.op_id)  # a late response.created gets cancelled
            else:
                self._core.forget(op.op_id)
            return OpFailed(
                op.op_id,
                local_error(
                    ErrorKind.TIMEOUT,
                    f"{op.kind} not acknowledged within {self._model.op_timeout_s}s",
                    operation=op.kind,
                ),
            )

    def _report_failure(self, result: OpResult[object]) -> None:
        """A rejected fire-and-forget op becomes a (non-fatal) `ProviderError` event.

        A loss with the connection is not reported: the reconnect already says so.
        """
        if isinstance(result, OpFailed) and result.error.kind is not ErrorKind.DISCONNECTED:
            self._events.send(result.error)

    async def _fire_and_report(self, build: Callable[[], ClientOp[object]]) -> None:
        try:
            conn = await self._wait_ready()
        except OperationError:
            return
        self._report_failure(await self._request(conn, build()))

    async def _run_edit(
        self, conn: _Connection, decision: ClientOp[object] | Skip, item_id: str
    ) -> None:
        if isinstance(decision, Skip):
            logger.debug("history edit of %s skipped: %s", item_id, decision.reason)
            return
        # Non-fatal by design: the session goes on, the runtime sees what was rejected.
        self._report_failure(await self._request(conn, decision))

    def _dispatch(self, conn: _Connection, out: Output) -> None:
        if isinstance(out, CORE_EVENT_TYPES):
            self._router.route(out)
        elif isinstance(out, OpCompleted | OpFailed):
            future = self._ops.pop(out.op_id, None)
            if future is not None and not future.done():
                future.set_result(out)
        elif isinstance(out, Send):
            conn.send_event(out.event)
        elif isinstance(out, SessionCreated):
            if not conn.session_created.done():
                conn.session_created.set_result(None)
        elif isinstance(out, ProviderError) and out.kind is ErrorKind.EXPIRED:
            conn.expired = True  # the server closes next; the reconnect says why
            logger.info("realtime session hit its maximum duration; reconnecting")
        else:
            if isinstance(out, ProviderError) and out.fatal:
                conn.fatal = out
                conn.end("fatal")
            self._events.send(out)

    def _emit_closed(self, reason: str, error: ProviderError | None = None) -> None:
        self._closed_event.set()
        self._ready.clear()
        if not self._closed_emitted:
            self._closed_emitted = True
            self._events.send(SessionClosed(reason=reason, error=error))
            self._events.close()

    # ================================================================= socket lifecycle

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
                delay = policy.delay()
                if delay > 0:
                    logger.warning(
                        "realtime reconnect after %d consecutive failures; retrying in %.1fs",
                        policy.failures,
                        delay,
                    )
                    await clock.sleep(delay)
                try:
                    conn, replayed = await self._open(replay=reason != "initial")
                except _Fatal as fatal:
                    if not self._first.done():
                        self._first.set_exception(OperationError.from_error(fatal.error))
                    self._emit_closed("fatal", fatal.error)
                    return
                except (OSError, WebSocketException, TimeoutError, OperationError) as exc:
                    if not self._first.done():
                        self._first.set_exception(
                            exc
                            if isinstance(exc, OperationError)
                            else OperationError(
                                ErrorKind.UNAVAILABLE, f"connect failed: {exc!r}", "connect_failed"
                            )
                        )
                        self._emit_closed("connect_failed")
                        return
                    policy.connect_failed()
                    logger.warning("realtime reconnect failed (%s)", type(exc).__name__)
                    if policy.exhausted or self._closing:
                        self._give_up(f"gave up reconnecting: {exc!r}")
                        return
                    continue
                if not self._first.done():
                    self._first.set_result(None)
                else:
                    self.reconnects += 1
                    # Only an input that made it into the new session, as its last item.
                    owed = self._replay_unanswered
                    unanswered = owed if replayed and replayed[-1] == owed else None
                    self._events.send(
                        SessionReconnected(
                            reason=reason,
                            replayed_item_ids=replayed,
                            unanswered_item_id=unanswered,
                            outage_s=(
                                None if dropped_at is None else self._model.clock.now() - dropped_at
                            ),
                        )
                    )
                opened_at = clock.now()
                reason = await self._serve(conn)
                dropped_at = clock.now()
                policy.session_ended(
                    dropped_at - opened_at, planned=reason in ("session_expired", "max_duration")
                )
                await self._teardown(conn, reason)
                if reason == "closed" or self._closing:
                    self._emit_closed("closed")
                    return
                if reason == "fatal":
                    self._emit_closed("fatal", conn.fatal)
                    return
                if not self._model.reconnect:
                    self._emit_closed(reason)
                    return
                if policy.exhausted:
                    # Every session dies soon after setup: the provider accepts and drops.
                    self._give_up(f"{policy.failures} sessions in a row ended within setup")
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

    def _give_up(self, message: str) -> None:
        err = ProviderError(ErrorKind.UNAVAILABLE, message, "reconnect_failed")
        self._emit_closed("reconnect_failed", err)

    async def _open(self, *, replay: bool) -> tuple[_Connection, tuple[str, ...]]:
        """Open a socket, configure the session, replay history; returns the live connection."""
        model = self._model
        headers = model._headers()
        try:
            ws = await connect(
                model.url,
                additional_headers=headers,
                open_timeout=model.connect_timeout_s,
                max_size=16 * 2**20,
                compression=None,
                logger=redacting_logger(_WS_LOGGER_NAME),
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise _Fatal(
                    ProviderError(
                        ErrorKind.FATAL, f"handshake rejected (HTTP {status})", "invalid_api_key"
                    )
                ) from None
            raise
        self._core.connection_opened()
        conn = _Connection(ws)
        conn.tasks = [
            asyncio.create_task(self._recv_loop(conn), name="openai-realtime-recv"),
            asyncio.create_task(self._send_loop(conn), name="openai-realtime-send"),
        ]
        self._conn = conn
        try:
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
        results = await asyncio.gather(*(self._request(conn, op) for op in ops))
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
        timer = asyncio.create_task(self._recycle_when_due(conn), name="openai-realtime-recycle")
        try:
            return await asyncio.shield(conn.ended)
        finally:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer

    async def _recycle_when_due(self, conn: _Connection) -> None:
        """Reconnect before the provider's session cap, at a moment no response is running."""
        clock = self._model.clock
        await clock.sleep(self._model.max_session_seconds)
        while conn.alive and not self._core.idle:
            generations = self._router.active
            if generations:
                await asyncio.wait([g.done for g in generations])
            else:
                await asyncio.sleep(0.02)  # a requested response has not started yet
        conn.end("max_duration")

    async def _recv_loop(self, conn: _Connection) -> None:
        core = self._core
        try:
            async for raw in conn.ws:
                event = decode_server_frame(raw)
                if event is None:
                    core.receive(None)  # counted as malformed by the core's limiter
                    continue
                for out in core.receive(event):
                    self._dispatch(conn, out)
                if not conn.alive:
                    break
        except ConnectionClosed:
            pass
        finally:
            conn.end("session_expired" if conn.expired else "dropped")
            self._lose(conn, conn.ended.result())

    async def _send_loop(self, conn: _Connection) -> None:
        try:
            while True:
                message = await conn.queue.get()
                await conn.ws.send(message)
        except ConnectionClosed:
            conn.end("session_expired" if conn.expired else "dropped")

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
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.ws.close(), 2.0)
