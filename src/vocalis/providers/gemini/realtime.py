"""The Gemini Live client: the public operations of a session on the neutral interface.

`GeminiRealtimeSession` is the session the runtime talks to; the sockets underneath (drops,
``goAway``, re-seeds) are `SocketLifecycle`'s (lifecycle.py), the protocol decisions the
sans-I/O `GeminiProtocol`'s (protocol.py).

Gemini cannot edit history: ``truncate`` and ``delete_item`` record nothing on the wire (the
heard checkpoint, ``sync_history``, does the work: a correction note or a re-seed, planned by
:mod:`~vocalis.providers.gemini.heard`), ``cancel_response`` is local (the service keeps
generating into its history; the checkpoint accounts for it).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence

import numpy as np

from vocalis.conversation.items import ConversationItem
from vocalis.providers.base import (
    Capabilities,
    ErrorKind,
    Generation,
    Modality,
    OperationError,
    ProviderEvent,
    RealtimeSession,
    SessionOptions,
)
from vocalis.providers.gemini import wire
from vocalis.providers.gemini.heard import (
    Correct,
    HeardPlan,
    HeardStrategy,
    Reseed,
    note_turn,
    plan_heard_sync,
)
from vocalis.providers.gemini.input_audio import ManualTurn
from vocalis.providers.gemini.lifecycle import SocketLifecycle
from vocalis.providers.gemini.model import CAPABILITIES, GeminiRealtimeModel


class GeminiRealtimeSession(SocketLifecycle, RealtimeSession):
    """One logical Gemini Live session; connections come and go underneath."""

    def __init__(self, model: GeminiRealtimeModel, options: SessionOptions) -> None:
        super().__init__(model, options)
        self.manual_turn = ManualTurn()
        self.dropped_audio_samples = 0
        self.corrections = 0  # (read by tests, bench and the closing notes)

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

    async def forward_events(self, callback: Callable[[ProviderEvent], None]) -> None:
        """Each event to `callback` inside the receive step that produced it (see the base)."""
        await self._events.forward_until_closed(callback)

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
        await self._resume()

    async def commit_audio(self) -> None:
        if not self._manual:
            return  # server VAD ends turns itself
        chunks = self.manual_turn.take()
        conn = self._require_conn()
        conn.send(wire.ACTIVITY_START)
        for chunk in chunks:
            conn.send(wire.audio_frame(chunk))
        conn.send(wire.ACTIVITY_END)
        for out in self.protocol.caller_committed():
            self._dispatch(conn, out)

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
        plan, now = self._heard_plan(items)
        if isinstance(plan, Reseed):
            await self._reseed(plan.items, now)
        elif isinstance(plan, Correct):
            self._correct(plan)

    def sync_history_nowait(self, items: Sequence[ConversationItem]) -> bool:
        """See `RealtimeSession.sync_history_nowait`: done at once unless the plan re-seeds (a
        new connection) or a switch or a lost socket needs the awaited path; a correction
        note is one synchronous send, so it is done here too."""
        if self._switch_lock.locked():
            return False
        try:
            self._require_conn()  # closed or disconnected: the awaited path reports it
        except OperationError:
            return False
        plan, _now = self._heard_plan(items)
        if isinstance(plan, Reseed):
            return False  # `sync_history` plans again (nothing above changed but the items)
        if isinstance(plan, Correct):
            self._correct(plan)
        return True

    def _heard_plan(self, items: Sequence[ConversationItem]) -> tuple[HeardPlan, float]:
        """Remember ``items`` as the heard history and plan what the service must be told."""
        self._heard = list(items)
        record = self.protocol.record.settled(self.protocol.unsettled_items)
        now = asyncio.get_running_loop().time()
        allowed = self._reseed_allowed(now)
        plan = plan_heard_sync(
            self._model.heard_strategy,
            record,
            items,
            frozenset(self._corrected),
            reseed_allowed=allowed,
        )
        return plan, now

    def _correct(self, plan: Correct) -> None:
        """Tell the service in a note which words of its last turns were never heard."""
        note_id = self.protocol.new_id("note")
        self._require_conn().send(
            wire.dumps(wire.client_content([note_turn(plan.note)], turn_complete=False))
        )
        self.protocol.client_turn_sent(note_id, "user", plan.note)
        if self._model.heard_strategy is not HeardStrategy.CORRECTION:  # (over the budget)
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
