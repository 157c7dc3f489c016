"""Which model turn is running, which one is held back, and the value events of each.

Why a module of its own: a Gemini model turn is one response holding one message, neither
with an id. This is where they get one, where the message's `ItemAccount` is made (and
counted against the call's item bound, `providers/item_bound.py`), and where a response
ends — every message before its response, whatever ended it (completed, cancelled, the
connection lost). It also keeps the **held-back** response: the answer the service starts on
its own once every tool call has its response (or a manual turn was committed); its events
are buffered until the runtime asks for its reply (:meth:`ResponseBook.claim_held`), so it
never starts while earlier audio still plays. `protocol.py` reads the service's messages and
calls in here; nothing here reads the wire.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vocalis.providers.base import (
    GenerationDone,
    GenerationStatus,
    ItemAccount,
    MessageStatus,
    Modality,
    ToolCall,
)
from vocalis.providers.core_events import (
    AudioEnded,
    CoreEvent,
    ItemAnnounced,
    MessageEnded,
    MessageStarted,
    ResponseEnded,
    ResponseStarted,
    TextEnded,
    ToolCallReady,
)
from vocalis.providers.gemini.heard import ServerTurn
from vocalis.providers.gemini.record import ServerRecord
from vocalis.providers.item_bound import ItemBound


@dataclass(slots=True)
class ModelTurn:
    """The model turn being received (one response)."""

    response_id: str
    request_id: str | None
    held: bool
    message: ItemAccount | None = None
    item_ids: list[str] = field(default_factory=list)
    record: ServerTurn | None = None
    # Ended for the runtime (cancelled locally) while the service still generates it: later
    # content only grows the server record.
    ended: bool = False
    # Events of a held-back response, released by `claim_held`.
    buffer: list[CoreEvent] = field(default_factory=list)


class ResponseBook:
    """One session's responses, across connections: the running one and the held-back one."""

    def __init__(
        self,
        *,
        modality: tuple[Modality, ...],
        new_id: Callable[[str], str],
        item_bound: ItemBound,
        record: ServerRecord,
    ) -> None:
        self._modality = modality
        self._new_id = new_id
        self._item_bound = item_bound
        self._record = record
        self.current: ModelTurn | None = None
        self.held: ModelTurn | None = None
        self._expected_requests: list[str] = []
        # The service's next response answers no request: hold it back (see the module doc).
        self.hold_next = False
        # The latest usage report (a response's end carries it).
        self.usage: dict[str, Any] | None = None

    # -- state queries ---------------------------------------------------------------------

    @property
    def generating(self) -> bool:
        turn = self.current
        return turn is not None and not turn.ended and not turn.held

    @property
    def unsettled_items(self) -> frozenset[str]:
        live = self.current if self.current is not None and not self.current.ended else None
        turns = (t for t in (live, self.held) if t is not None)
        return frozenset(item for turn in turns for item in turn.item_ids)

    @property
    def idle(self) -> bool:
        return self.current is None and self.held is None and not self.hold_next

    def expect(self, request_id: str) -> None:
        self._expected_requests.append(request_id)

    def drop_expectation(self, request_id: str) -> None:
        if request_id in self._expected_requests:
            self._expected_requests.remove(request_id)

    # -- a response ------------------------------------------------------------------------

    def start(self, out: list[Any]) -> ModelTurn:
        """A new response: it answers the oldest expected request, else it is the service's
        own (held back after tool outputs or a manual turn, else started at once)."""
        request_id = self._expected_requests.pop(0) if self._expected_requests else None
        held = request_id is None and self.hold_next
        self.hold_next = False
        turn = ModelTurn(self._new_id("resp"), request_id, held)
        self.current = turn
        if held:
            self.held = turn
        else:
            out.append(ResponseStarted(turn.response_id, request_id))
        return turn

    def message(self, turn: ModelTurn, out: list[Any]) -> ItemAccount:
        """The turn's message (made, counted and recorded on its first content)."""
        if turn.message is None:
            self._item_bound.take()
            item_id = self._new_id("model")
            turn.message = ItemAccount(item_id)
            started = MessageStarted(
                turn.response_id, item_id, len(turn.item_ids), self._modality, None, turn.message
            )
            turn.item_ids.append(item_id)
            turn.record = ServerTurn("model", item_id, "")
            self._record.append(turn.record)
            self.emit(turn, started, out)
        return turn.message

    def add_call(self, turn: ModelTurn, call: ToolCall, out: list[Any]) -> None:
        """A function call of the turn: announced, then ready (exactly once per call id)."""
        turn.item_ids.append(call.item_id)
        self.emit(turn, ItemAnnounced(turn.response_id, call.item_id), out)
        self.emit(turn, ToolCallReady(call), out)

    def emit(self, turn: ModelTurn, event: CoreEvent, out: list[Any]) -> None:
        """A response's event: to the runtime, buffered while held back, dropped once ended."""
        if turn.ended:
            return
        if turn.held:
            turn.buffer.append(event)
        else:
            out.append(event)

    def claim_held(self, request_id: str | None) -> list[CoreEvent]:
        """Release the held-back response as the answer to ``request_id`` (``None``: as the
        server's own); its buffered events, ``ResponseStarted`` first. Empty if none."""
        turn, self.held = self.held, None
        if turn is None:
            return []
        turn.held = False
        turn.request_id = request_id
        events: list[CoreEvent] = [ResponseStarted(turn.response_id, request_id)]
        events += turn.buffer
        turn.buffer = []
        return events

    # -- ends ------------------------------------------------------------------------------

    def end_message(self, turn: ModelTurn, status: MessageStatus, out: list[Any]) -> None:
        account, turn.message = turn.message, None
        if account is None or account.status is not None:
            return
        account.status = status
        item_id = account.item_id
        self.emit(turn, AudioEnded(item_id, text_only="audio" not in self._modality), out)
        self.emit(turn, TextEnded(item_id), out)
        self.emit(turn, MessageEnded(item_id, status, account.received_ms, account.text), out)

    def end_response(
        self,
        turn: ModelTurn,
        status: GenerationStatus,
        reason: str | None,
        out: list[Any],
        *,
        keep: bool = False,
    ) -> None:
        """End ``turn`` for the runtime; with ``keep`` it stays current (record only)."""
        if not keep:
            self.current = None
        if turn.ended:
            return
        if turn.held and status != "completed":
            # A held-back answer that was cut never reaches the runtime.
            self.held = None
            turn.ended = True
            return
        message_status: MessageStatus = "disconnected"
        if status == "completed" or status == "cancelled":
            message_status = status
        if turn.message is not None:
            self.end_message(turn, message_status, out)
        done = GenerationDone(
            turn.response_id, status, reason, None, tuple(turn.item_ids), self.usage
        )
        self.emit(turn, ResponseEnded(done), out)
        turn.ended = True

    def cancel_local(self, out: list[Any]) -> None:
        """The runtime cancelled the running turn: its streams end now (it stays current:
        the service goes on, and its words land in the record)."""
        turn = self.current
        if turn is not None and not turn.ended:
            self.end_response(turn, "cancelled", "client_cancelled", out, keep=True)

    def connection_ended(self, reason: str, out: list[Any]) -> None:
        """The connection is gone or replaced: the running response ends ``disconnected``,
        the held-back one is dropped (it died with the connection), nothing is expected."""
        if self.current is not None:
            self.end_response(self.current, "disconnected", reason, out)
        self.held = None
        self._expected_requests.clear()
        self.hold_next = False
