"""OpenAI Realtime GA over WebSocket: the thin I/O shell around `OpenAIProtocol`.

What lives here and nowhere else: sockets, tasks, futures, timeouts, reconnects.

* One `_Connection` per socket owns what waits to be written to it.
  When a socket dies its backlog dies with it: events queued for a dead socket are never
  sent on the next one (a stale `response.create` or `truncate` replayed into a fresh
  session would corrupt it).
* Reconnect on a dropped socket, on `session_expired`, and proactively before the 60-minute
  cap (`max_session_seconds`, waiting until no response is active): new socket, the full
  session config again, then the history *as heard* replayed as text items. The in-flight
  `Generation` ends with status "disconnected" at the moment the old socket is lost, so the
  runtime's ledger treats what it did not play as unheard. Fatal codes close the session.
* `append_audio` is the hot path: frames are batched into one append per
  `input_chunk_ms` (`appends.py`), one base64 call and one string concatenation per append,
  no logging, no JSON encoder.
* The API key never reaches a log line: the WebSocket library logs through a redacting logger
  and our own messages never include headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar, cast

import numpy as np

from vocalis.conversation.items import (
    ConversationItem,
    FunctionCallOutputItem,
)
from vocalis.providers.base import (
    Capabilities,
    ErrorKind,
    Generation,
    InputSpeechStarted,
    InputSpeechStopped,
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
)
from vocalis.providers.core_events import CORE_EVENT_TYPES
from vocalis.providers.openai.connection import _Connection
from vocalis.providers.openai.errors import local_error
from vocalis.providers.openai.frames import decode_server_frame
from vocalis.providers.openai.history import (
    SyncedPrefix,
    history_in_sync,
    plan_history_ops,
)
from vocalis.providers.openai.lifecycle import SocketLifecycle
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
from vocalis.providers.router import GenerationRouter
from vocalis.utils.channel import Channel
from vocalis.utils.flag import Flag

__all__ = ["OpenAIRealtimeModel", "OpenAIRealtimeSession", "decode_server_frame"]

logger = logging.getLogger(__name__)
T = TypeVar("T")
_WS_LOGGER_NAME = "vocalis.providers.openai.ws"
# Retrieves of an unacknowledged create's item before its socket counts as deaf.
_FIND_ATTEMPTS = 3


# --------------------------------------------------------------------------- connection


class OpenAIRealtimeSession(SocketLifecycle, RealtimeSession):
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
        # Flags, not asyncio.Events: read per caller frame, waited on only between sockets.
        self._ready = Flag()
        self._closed_event = Flag()
        self._closing = False
        self._closed_emitted = False
        self._main: asyncio.Task[None] | None = None
        self._first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # The heard history last given by the runtime, and the mirror position at that time.
        self._heard: list[ConversationItem] = []
        self._heard_seq = 0
        # What the last sync found already equal on both sides (a sync plans only the rest).
        self._synced = SyncedPrefix()
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

    async def forward_events(self, callback: Callable[[ProviderEvent], None]) -> None:
        """Each event to `callback` inside the receive step that produced it (see the base)."""
        await self._events.forward_until_closed(callback)

    def append_audio(self, samples: np.ndarray) -> None:
        conn = self._conn
        if conn is None or not self._ready.is_set():
            # Between sockets there is nowhere to send audio; it is counted, not queued
            # (queued input would be replayed into the next session out of context).
            self.dropped_audio_samples += len(samples)
            return
        conn.send_audio(samples)

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
        wire_item = to_wire_item(item, provider_item_id(item.id))
        op = self._core.create(wire_item, local_id=item.id, previous_item_id=previous)
        result = await self._create(conn, op)
        if isinstance(result, OpFailed):
            raise OperationError.from_error(result.error)
        return result.value

    async def _create(self, conn: _Connection, op: ClientOp[str]) -> OpResult[str]:
        """Send a create; one not acknowledged in time is never simply sent again.

        It may still have happened (its ack was lost or is late): ask for the item by its id
        (`_find`), and create it again only if the server says it lacks it. Asking first
        matters: the real service appends a second item under a reused id instead of
        refusing it. (A server that refuses the reused id is fine too: the core takes
        "already exists" as success.) Never more than one more create.
        """
        result = await self._request(conn, op)
        retried = False
        while isinstance(result, OpFailed) and result.error.kind is ErrorKind.TIMEOUT:
            found = await self._find(conn, op)
            missing = isinstance(found, OpFailed) and found.error.kind is ErrorKind.NOT_FOUND
            if retried or not missing:
                return found
            retried = True
            event = op.event
            op = self._core.create(
                event["item"],
                local_id=op.local_id or str(event["item"]["id"]),
                previous_item_id=event.get("previous_item_id"),
            )
            result = await self._request(conn, op)
        return result

    async def _find(self, conn: _Connection, create: ClientOp[str]) -> OpResult[str]:
        """Whether the server holds the item of an unacknowledged create: completed with its
        id, or failed `NOT_FOUND` only when the server said so.

        A retrieve changes nothing, so a late answer is asked for again. A server that
        answers none is deaf: whether the item exists cannot be known on its socket, so the
        socket is dropped (`DISCONNECTED`). The item is then in no provider session the
        client will talk to, and the history re-sync creates it once in the fresh one.
        """
        item_id = str(create.event["item"]["id"])
        for _ in range(_FIND_ATTEMPTS):
            retrieve = self._core.retrieve(item_id, local_id=create.local_id)
            found = await self._request(conn, retrieve)
            if isinstance(found, OpCompleted) or found.error.kind is not ErrorKind.TIMEOUT:
                return found
        conn.end("unresponsive")
        message = f"no answer whether {item_id} was created; reconnecting"
        logger.warning("realtime server did not answer %d retrieves; reconnecting", _FIND_ATTEMPTS)
        error = local_error(ErrorKind.DISCONNECTED, message, operation="create", item_id=item_id)
        return OpFailed(create.op_id, error)

    async def send_tool_output(
        self, call_id: str, output: str, *, item_id: str | None = None
    ) -> str:
        item = FunctionCallOutputItem(
            id=item_id or f"vc_out_{next(self._ids)}", call_id=call_id, output=output
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
            ops = plan_history_ops(self._core, self._heard, self._synced)
            if not ops:
                return
            results = await asyncio.gather(*(self._send_op(conn, op) for op in ops))
        for result in results:
            self._report_failure(result)

    def sync_history_nowait(self, items: Sequence[ConversationItem]) -> bool:
        """See `RealtimeSession.sync_history_nowait`: True when the provider conversation
        equals `items` already (they are remembered for replays, as `sync_history` would)."""
        if self._sync_lock.locked() or self._conn is None or not self._ready.is_set():
            return False  # a sync under way, or no socket: `sync_history` waits for it
        heard = list(items)
        if not history_in_sync(self._core, heard, self._synced):
            return False
        self._heard = heard
        self._heard_seq = self._core.mirror.seq
        return True

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
            self._core.forget(op.op_id)  # e.g. a late response.created gets cancelled
            return OpFailed(
                op.op_id,
                local_error(
                    ErrorKind.TIMEOUT,
                    f"{op.kind} not acknowledged within {self._model.op_timeout_s}s",
                    operation=op.kind,
                ),
            )

    async def _send_op(self, conn: _Connection, op: ClientOp[object]) -> OpResult[object]:
        """`_request`, except that a create goes through `_create` (never sent twice blind)."""
        if op.kind == "create":
            return await self._create(conn, cast("ClientOp[str]", op))
        return await self._request(conn, op)

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
            elif (
                isinstance(out, InputSpeechStarted | InputSpeechStopped)
                and conn.appends is not None
            ):
                # Inside a caller turn no audio is held as quiet (appends.py).
                conn.appends.in_turn = isinstance(out, InputSpeechStarted)
            self._events.send(out)

    def _emit_closed(self, reason: str, error: ProviderError | None = None) -> None:
        self._closed_event.set()
        self._ready.clear()
        if not self._closed_emitted:
            self._closed_emitted = True
            self._events.send(SessionClosed(reason=reason, error=error))
            self._events.close()
