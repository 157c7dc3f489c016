"""The Gemini Live client: the WebSocket shell around `GeminiProtocol` on the neutral interface.

Sockets come and go under one logical session:

* **drop** (the socket died): every stream ends ``disconnected``, then a new connection
  *resumes* the last ``sessionResumptionUpdate`` handle (or, without one, is seeded with the
  heard history), with backoff; `SessionReconnected` follows;
* **goAway** (the service will end the connection): a new connection resumes the handle at
  the next idle moment, before the time runs out; caller audio sent meanwhile is replayed;
* **re-seed** (the heard contract, :mod:`~vocalis.providers.gemini.heard`): at a heard
  checkpoint (``sync_history``) where the service holds words the caller never heard, a fresh
  connection is seeded with the heard history and the caller's audio since the interrupted
  turn began is replayed into it, so an utterance in progress is heard whole.

Gemini cannot edit history: ``truncate`` and ``delete_item`` record nothing on the wire (the
checkpoint does the work), ``cancel_response`` is local (the service keeps generating into its
history; the checkpoint accounts for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np

from vocalis.conversation.items import ConversationItem
from vocalis.providers.base import (
    Capabilities,
    ErrorKind,
    Generation,
    Modality,
    OperationError,
    ProviderError,
    ProviderEvent,
    RealtimeSession,
    SessionClosed,
    SessionOptions,
    SessionReconnected,
)
from vocalis.providers.core_events import CORE_EVENT_TYPES, ResponseStarted
from vocalis.providers.gemini import wire
from vocalis.providers.gemini.connection import Connection, drain, open_socket, pump
from vocalis.providers.gemini.errors import close_error
from vocalis.providers.gemini.heard import (
    Correct,
    HeardStrategy,
    Reseed,
    ReseedBudget,
    note_turn,
    plan_heard_sync,
    record_of,
)
from vocalis.providers.gemini.input_audio import ManualTurn
from vocalis.providers.gemini.model import CAPABILITIES, GeminiRealtimeModel
from vocalis.providers.gemini.protocol import GeminiProtocol, GoAway, Output, SetupDone
from vocalis.providers.reconnect import ReconnectPolicy
from vocalis.providers.router import GenerationRouter
from vocalis.utils.channel import Channel
from vocalis.utils.logsafe import WarnLimiter

logger = logging.getLogger(__name__)


class GeminiRealtimeSession(RealtimeSession):
    """One logical Gemini Live session; connections come and go underneath."""

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
        self.manual_turn = ManualTurn()
        self.dropped_audio_samples = 0
        # What the heard contract cost (read by tests, bench and the closing notes).
        self.reconnects = 0
        self.reseeds = 0
        self.corrections = 0
        self.seeded_turns = 0

    # ================================================================= public API

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    @property
    def options(self) -> SessionOptions:
        return self._options

    @property
    def connected(self) -> bool:
        return self._conn is not None and self._conn.alive

    async def events(self) -> AsyncIterator[ProviderEvent]:
        async for event in self._events:
            yield event

    def append_audio(self, samples: np.ndarray) -> None:
        self.protocol.input.append(samples)
        if self._manual:
            self.manual_turn.append(samples)
            return
        conn = self._conn
        if self._paused:
            return  # replayed from `protocol.input` once the new connection is up
        if conn is None or not conn.alive:
            self.dropped_audio_samples += len(samples)
            return
        conn.send(wire.audio_frame(samples))

    async def update_options(self, options: SessionOptions) -> None:
        """Gemini fixes the setup per connection: a new connection resumes with the new one."""
        self._options = options
        handle = self.protocol.record.resume_handle
        await self._switch(handle=handle, seed=None if handle else self._heard, replay_from=None)

    async def commit_audio(self) -> None:
        if not self._manual:
            return  # server VAD ends turns itself
        chunks = self.manual_turn.take()
        conn = self._require_conn()
        conn.send(wire.ACTIVITY_START)
        for chunk in chunks:
            conn.send(wire.audio_frame(chunk))
        conn.send(wire.ACTIVITY_END)
        self._events.send(self.protocol.caller_committed())

    async def clear_audio(self) -> None:
        self.manual_turn.clear()

    async def generate_reply(
        self,
        *,
        instructions: str | None = None,
        tool_choice: str | None = None,
        output_modalities: Sequence[Modality] | None = None,
    ) -> Generation:
        conn = self._require_conn()
        request_id = self.protocol.new_id("req")
        if self.protocol.holding:
            self.router.expect(request_id)
            for event in self.protocol.claim_held(request_id):
                self.router.route(event)
            held = self.router.claim(request_id)
            assert held is not None
            return held
        if self.protocol.generating:
            raise OperationError(ErrorKind.BUSY, "a model turn is in progress", "busy")
        future: asyncio.Future[Generation] = asyncio.get_running_loop().create_future()
        self._waiters[request_id] = future
        self.router.expect(request_id)
        if not self.protocol.self_start_expected:
            turns = [{"role": "user", "parts": [{"text": instructions}]}] if instructions else []
            if instructions:
                self.protocol.client_turn_sent(self.protocol.new_id("note"), "user", instructions)
            conn.send(wire.dumps(wire.client_content(turns, turn_complete=True)))
        self.protocol.expect_generation(request_id)
        try:
            async with asyncio.timeout(self._model.op_timeout_s):
                return await future
        except TimeoutError:
            raise OperationError(
                ErrorKind.TIMEOUT, "no model turn started in time", "timeout"
            ) from None
        finally:
            self._waiters.pop(request_id, None)
            self.router.claim(request_id)
            self.protocol.drop_expectation(request_id)

    async def cancel_response(self, response_id: str | None = None) -> None:
        """Local only: Gemini has no cancel; the turn's streams end ``cancelled`` here."""
        for out in self.protocol.cancel_local():
            self._dispatch(self._conn, out)

    async def truncate(self, item_id: str, audio_end_ms: float) -> None:
        """No wire operation exists; the next heard checkpoint (``sync_history``) applies it."""

    async def delete_item(self, item_id: str) -> None:
        """No wire operation exists; the next heard checkpoint (``sync_history``) applies it."""

    async def create_item(self, item: ConversationItem, previous_item_id: str | None = None) -> str:
        turns = wire.history_turns([item])
        if turns:
            self._require_conn().send(wire.dumps(wire.client_content(turns, turn_complete=False)))
            role = "assistant" if turns[0]["role"] == "model" else "user"
            self.protocol.client_turn_sent(item.id, role, getattr(item, "text", ""))
        return item.id

    async def send_tool_output(
        self, call_id: str, output: str, *, item_id: str | None = None
    ) -> str:
        if call_id in self.protocol.cancelled_calls:
            raise OperationError(
                ErrorKind.NOT_FOUND, "the model cancelled this call", "tool_call_cancelled"
            )
        name = self.protocol.call_names.get(call_id)
        if name is None:
            raise OperationError(ErrorKind.NOT_FOUND, f"unknown call id {call_id}", "unknown_call")
        self._require_conn().send(wire.dumps(wire.tool_response(call_id, name, output)))
        item_id = item_id or f"fo_{call_id}"
        self.protocol.tool_output_sent(call_id, item_id, output)
        return item_id

    async def sync_history(self, items: Sequence[ConversationItem]) -> None:
        """The heard checkpoint: make the service's memory match ``items`` (see heard.py)."""
        self._heard = list(items)
        strategy = self._model.heard_strategy
        record = self.protocol.record.settled(self.protocol.unsettled_items)
        now = asyncio.get_running_loop().time()
        allowed = self._reseed_budget.allows(now)
        plan = plan_heard_sync(
            strategy, record, items, frozenset(self._corrected), reseed_allowed=allowed
        )
        if isinstance(plan, Reseed):
            self._reseed_budget.spend(now)
            replay_from = self.protocol.generation_input_ms
            if await self._switch(handle=None, seed=plan.items, replay_from=replay_from):
                self.reseeds += 1
                self._corrected.clear()
        elif isinstance(plan, Correct):
            note_id = self.protocol.new_id("note")
            self._require_conn().send(
                wire.dumps(wire.client_content([note_turn(plan.note)], turn_complete=False))
            )
            self.protocol.client_turn_sent(note_id, "user", plan.note)
            if strategy is not HeardStrategy.CORRECTION:  # (over the re-seed budget)
                self._corrected.update(cut.item_id for cut in plan.unheard)  # re-seed later
            else:
                self.protocol.record.accept_heard({cut.item_id: cut.heard for cut in plan.unheard})
            self.corrections += 1

    async def aclose(self) -> None:
        if self._closing:
            return
        self._closing = True
        async with self._switch_lock:  # a switch under way ends first: its socket goes too
            conn = self._conn
            if conn is not None:
                await conn.retire()
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._end_streams()
        self._emit_closed("closed")

    # ================================================================= connections

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

    async def _resume_before(self, conn: Connection, seconds_left: float) -> None:
        """After ``goAway``: switch at the next idle moment, at the latest 1 s before the end."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, seconds_left - 1.0)):
                await self._idle.wait()
        if conn is not self._conn or self._closing:
            return
        handle = self.protocol.record.resume_handle
        await self._switch(handle=handle, seed=None if handle else self._heard, replay_from=None)
        self.reconnects += 1

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
