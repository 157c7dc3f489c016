"""The OpenAI Realtime GA protocol as a state machine with no I/O (in the style of h11).

Data in, data out. `receive(event)` takes one decoded server event and returns what it
produced, in order:

* value events (`providers/core_events.py`) describing responses, messages, audio, text and
  tool calls — the asyncio shell routes them into `Generation` streams;
* provider-neutral `ProviderEvent`s (speech started, transcripts, errors);
* `OpCompleted` / `OpFailed` for client operations (correlated by our `event_id`, the response
  `metadata`, the item id, or — where the server sends `event_id: null` — the error code);
* `Send`: client events the core itself needs sent (cancel an abandoned response, retry a cut);
* `SessionCreated`.

Client operations (`session_update`, `response_create`, `truncate`, ...) return the wire
event to send. Nothing here imports asyncio, holds a future, a channel or a clock, so the
core runs — and is tested — outside any event loop. Jobs are split by module: `ops.py`
(operations in flight, error correlation), `assembly.py` (response events: messages, tool
calls), `responses.py` (which responses and items run, their accounts), `inputs.py` (caller
audio and transcripts), `items.py` (conversation items: the mirror, the caller's ids),
`wire.py` (event shapes), `event_kinds.py` (which server events are aliases, ignored or
item-creating); this module owns the client operations and the dispatch.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias, cast

from vocalis.providers.base import (
    OpCompleted,
    OpFailed,
    ProviderEvent,
    ProviderLimits,
)
from vocalis.providers.core_events import CoreEvent
from vocalis.providers.item_bound import ItemBound, OverItemBound
from vocalis.providers.limits import TextBounds
from vocalis.providers.openai.assembly import ResponseAssembler
from vocalis.providers.openai.event_kinds import (
    EVENT_ALIASES,
    IGNORED_EVENTS,
    MALFORMED,
    NEW_ITEM_EVENTS,
    STREAMED_DELTAS,
)
from vocalis.providers.openai.formats import AudioFormat
from vocalis.providers.openai.inputs import InputTracker
from vocalis.providers.openai.items import ConversationItems
from vocalis.providers.openai.ops import ClientOp, OpRegistry, Send, Skip
from vocalis.providers.openai.wire import (
    ErrorBody,
    ItemRefEvent,
    SessionEvent,
    buffer_event,
    delete_event,
    intern_kept_fields,
    item_create_event,
    response_cancel_event,
    response_create_event,
    retrieve_event,
    session_update_event,
    truncate_event,
)
from vocalis.utils.logsafe import WarnLimiter

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SessionCreated:
    session: dict[str, Any]


Output: TypeAlias = (
    ProviderEvent | CoreEvent | OpCompleted[object] | OpFailed | Send | SessionCreated
)
_Handler: TypeAlias = Callable[[Any, list[Any]], None]


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 120 else text[:117] + "..."


class OpenAIProtocol:
    """One realtime session's protocol state (survives reconnects; see `connection_opened`)."""

    def __init__(
        self,
        *,
        audio_format: AudioFormat,
        server_vad: bool = True,
        output_audio: bool = True,
        limits: ProviderLimits | None = None,
        warn_limiter: WarnLimiter | None = None,
    ) -> None:
        self.audio_format = audio_format
        # With server VAD the server commits itself; our manual commit then hits an empty
        # buffer, which is benign.
        self.server_vad = server_vad
        self.limits = limits or ProviderLimits()
        self._warn = warn_limiter or WarnLimiter(logger)
        self.ops = OpRegistry()
        # Text bounds are per call: they survive reconnects like this object does.
        bounds = TextBounds(self.limits, self._warn)
        # Per call too: every table that grows per item asks it (`providers/item_bound.py`).
        self.item_bound = ItemBound(self.limits)
        self.responses = ResponseAssembler(
            audio_format=audio_format,
            ops=self.ops,
            limits=self.limits,
            bounds=bounds,
            item_bound=self.item_bound,
            warn=self._warn,
        )
        self.responses.output_audio = output_audio
        self.inputs = InputTracker(self.limits, bounds, self.item_bound, self._warn)
        self.items = ConversationItems(
            bound=self.item_bound, ops=self.ops, responses=self.responses, inputs=self.inputs
        )
        self.mirror = self.items.mirror
        self._handlers = self._handler_table()

    def _handler_table(self) -> dict[str, _Handler]:
        """Server event type -> handler: one table, so an unknown type is one dict miss."""
        r, i, c = self.responses, self._inputs, self.items
        return {
            "error": self._on_error,
            "session.created": self._on_session_created,
            "session.updated": self._on_session_updated,
            "input_audio_buffer.speech_started": i(self.inputs.speech_started),
            "input_audio_buffer.speech_stopped": i(self.inputs.speech_stopped),
            "input_audio_buffer.committed": self._on_committed,
            "input_audio_buffer.cleared": self._on_cleared,
            "conversation.item.added": c.on_item_added,
            "conversation.item.done": c.on_item_done,
            "conversation.item.truncated": c.on_item_truncated,
            "conversation.item.deleted": c.on_item_deleted,
            "conversation.item.retrieved": c.on_item_retrieved,
            "conversation.item.input_audio_transcription.delta": i(self.inputs.delta),
            "conversation.item.input_audio_transcription.updated": i(self.inputs.updated),
            "conversation.item.input_audio_transcription.completed": (
                self._on_transcription_completed
            ),
            "conversation.item.input_audio_transcription.failed": i(self.inputs.failed),
            "response.created": r.on_response_created,
            "response.output_item.added": r.on_output_item_added,
            "response.output_item.done": r.on_output_item_done,
            "response.content_part.added": r.on_content_part_added,
            "response.output_audio.delta": r.on_audio_delta,
            "response.output_audio.done": r.on_audio_done,
            "response.output_audio_transcript.delta": r.on_text_delta,
            "response.output_audio_transcript.done": r.on_transcript_done,
            "response.output_text.delta": r.on_text_delta,
            "response.output_text.done": r.on_text_done,
            "response.function_call_arguments.delta": r.on_arguments_delta,
            "response.function_call_arguments.done": r.on_arguments_done,
            "response.done": r.on_response_done,
        }

    @staticmethod
    def _inputs(handle: Callable[[ItemRefEvent], Output | None]) -> _Handler:
        def run(ev: ItemRefEvent, out: list[Output]) -> None:
            produced = handle(ev)
            if produced is not None:
                out.append(produced)

        return run

    # ================================================================= state queries

    @property
    def output_audio(self) -> bool:
        """The session's default output modality (a response may override it)."""
        return self.responses.output_audio

    @output_audio.setter
    def output_audio(self, value: bool) -> None:
        self.responses.output_audio = value

    @property
    def pending_response_creates(self) -> int:
        return self.ops.response_creates

    @property
    def idle(self) -> bool:
        """No response running and none requested (safe point for a proactive reconnect)."""
        return not self.responses.running and self.pending_response_creates == 0

    def active_item_ids(self) -> set[str]:
        """Output items of responses still running."""
        return self.responses.active_item_ids()

    def resolve_id(self, item_id: str) -> str:
        """The provider id for a caller's item id (identity when never remapped)."""
        return self.items.resolve_id(item_id)

    def pending_op_ids(self) -> list[str]:
        return self.ops.ids()

    # ================================================================= client operations

    def session_update(self, session: dict[str, Any]) -> ClientOp[dict[str, Any]]:
        op_id = self.ops.register("session.update")
        return ClientOp(op_id, "session.update", session_update_event(op_id, session))

    def response_create(self, response: dict[str, Any] | None = None) -> ClientOp[str]:
        """`response.create`; completes with the response id when `response.created` matched."""
        op_id = self.ops.register("response.create")
        return ClientOp(op_id, "response.create", response_create_event(op_id, response))

    def forget(self, op_id: str) -> None:
        """Stop tracking an op (its caller gave up), so it cannot absorb a later reply — nor
        can its own late reply complete another op (`OpRegistry.abandon`: a late response is
        cancelled, a create's late `.added` is not taken for a create whose id the server
        ignored)."""
        self.ops.abandon(op_id)

    def response_cancel(self, response_id: str | None = None) -> dict[str, Any]:
        """`response.cancel`; responses requested but not yet created are cancelled on arrival."""
        if response_id is None:
            self.ops.cancel_requested()
        return response_cancel_event(self.ops.new_event_id(), response_id)

    def truncate(self, item_id: str, audio_end_ms: float) -> ClientOp[int | None] | Skip:
        """Cut an assistant item at exactly `audio_end_ms` (whole ms): the ledger decided it.

        Only what the wire cannot carry is refused: an item not in the provider conversation,
        a text item this client created, or an item that is not a message. If the server's
        own copy of the audio is shorter, `ops.py` retries once at the server's length.
        """
        pid = self.resolve_id(item_id)
        entry = self.mirror.get(pid)
        if entry is None and self.responses.received_ms(pid) <= 0:
            return Skip(f"item {pid} is not in the provider conversation")
        if entry is not None and entry.created_by_client:
            return Skip(f"item {pid} is a text item created by this client; use sync_history")
        if entry is not None and entry.type != "message":
            return Skip(f"item {pid} is a {entry.type}, not an audio message")
        op_id = self.ops.register("truncate", item_id=pid)
        return ClientOp(op_id, "truncate", truncate_event(op_id, pid, math.floor(audio_end_ms)))

    def delete(self, item_id: str) -> ClientOp[None] | Skip:
        pid = self.resolve_id(item_id)
        if pid not in self.mirror and self.responses.received_ms(pid) <= 0:
            return Skip(f"item {pid} is not in the provider conversation")
        op_id = self.ops.register("delete", item_id=pid)
        return ClientOp(op_id, "delete", delete_event(op_id, pid))

    def create(
        self, wire_item: dict[str, Any], *, local_id: str, previous_item_id: str | None
    ) -> ClientOp[str]:
        """`conversation.item.create`; completes with the provider id from `.added`.

        `previous_item_id`: a provider id to insert after, `"root"` for the start, or `None`
        to append.
        """
        op_id = self.ops.register(
            "create",
            item_id=str(wire_item["id"]),
            local_id=local_id,
            item_type=str(wire_item.get("type")),
            role=wire_item.get("role"),
            wire_item=wire_item,
            previous_item_id=previous_item_id,
        )
        event = item_create_event(op_id, wire_item, previous_item_id)
        return ClientOp(op_id, "create", event, local_id=local_id)

    def retrieve(self, item_id: str, *, local_id: str | None = None) -> ClientOp[str]:
        """`conversation.item.retrieve`; completes with the id when the server has the item
        (the mirror learns it, and that `local_id`'s create made it), fails `NOT_FOUND` when
        it does not. Asked after a create that was not acknowledged in time, before creating
        it again."""
        op_id = self.ops.register("retrieve", item_id=item_id, local_id=local_id)
        return ClientOp(op_id, "retrieve", retrieve_event(op_id, item_id))

    def commit(self) -> ClientOp[str]:
        op_id = self.ops.register("commit")
        return ClientOp(op_id, "commit", buffer_event(op_id, "commit"))

    def clear(self) -> ClientOp[None]:
        op_id = self.ops.register("clear")
        return ClientOp(op_id, "clear", buffer_event(op_id, "clear"))

    # ================================================================= connection lifecycle

    def connection_lost(self, reason: str) -> list[Output]:
        """The socket is gone: every response ends "disconnected", every pending op fails.

        The mirror is kept (a reconnect replays from it); `connection_opened` resets it.
        """
        out: list[Output] = []
        self.responses.connection_lost(reason, out)
        out.extend(self.ops.fail_all(reason))
        return out

    def connection_opened(self) -> None:
        """A fresh provider session: empty conversation, new item ids."""
        self.mirror.reset()
        self.responses.reset()
        self.inputs.reset()

    # ================================================================= server events

    def receive(self, event: object) -> list[Output]:
        """Feed one decoded server event; returns what it produced, in order."""
        out: list[Output] = []
        if not isinstance(event, dict):
            self._warn.warn(
                "malformed", "ignoring non-object server event (%s)", type(event).__name__
            )
            return out
        etype = event.get("type")
        if not isinstance(etype, str):
            self._warn.warn("malformed", "ignoring server event without a string 'type'")
            return out
        etype = EVENT_ALIASES.get(etype, etype)
        handler = self._handlers.get(etype)
        if handler is None:
            if etype not in IGNORED_EVENTS:
                # One key for every unknown type: a peer inventing types cannot grow the
                # limiter's table or the log (#14).
                self._warn.warn("unknown", "ignoring unknown server event type %r", etype[:80])
            return out
        if etype not in STREAMED_DELTAS:
            intern_kept_fields(event)
        try:
            if etype in NEW_ITEM_EVENTS:
                self.items.check_new_item(event)
            handler(event, out)
        except OverItemBound:  # one item past `max_call_items`: the call ends
            self.item_bound.refused(out)
        except MALFORMED as exc:
            self._warn.warn(
                "malformed",
                "ignoring malformed %s event (%s: %s)",
                etype,
                type(exc).__name__,
                _short(exc),
            )
        return out

    # ----------------------------------------------------------------- session and errors

    # The server's echo of the session config is handed on, not kept: nothing reads it after
    # the event, and a session's config (instructions, tool schemas) is kilobytes per call.

    def _on_session_created(self, ev: SessionEvent, out: list[Output]) -> None:
        session = ev.get("session")
        out.append(SessionCreated(session if isinstance(session, dict) else {}))

    def _on_session_updated(self, ev: SessionEvent, out: list[Output]) -> None:
        session = ev.get("session")
        pending = self.ops.pop_oldest("session.update")
        if pending is not None:
            out.append(OpCompleted(pending.op_id, session if isinstance(session, dict) else {}))

    def _on_error(self, ev: dict[str, Any], out: list[Output]) -> None:
        err = ev.get("error")
        body: ErrorBody = cast(ErrorBody, err) if isinstance(err, dict) else {}
        out.extend(
            self.ops.on_error(
                body,
                server_vad=self.server_vad,
                on_gone=self.items.gone,
                on_exists=self.items.exists,
            )
        )

    # ----------------------------------------------------------------- input audio

    def _on_committed(self, ev: ItemRefEvent, out: list[Output]) -> None:
        committed = self.inputs.committed_item(ev)
        self.mirror.on_committed(committed.item_id, committed.previous_item_id)
        pending = self.ops.pop_oldest("commit")
        if pending is not None:
            out.append(OpCompleted(pending.op_id, committed.item_id))
        out.append(committed)

    def _on_cleared(self, ev: ItemRefEvent, out: list[Output]) -> None:
        pending = self.ops.pop_oldest("clear")
        if pending is not None:
            out.append(OpCompleted(pending.op_id, None))

    def _on_transcription_completed(self, ev: ItemRefEvent, out: list[Output]) -> None:
        final = self.inputs.completed(ev)
        self.mirror.on_transcript(final.item_id, final.text)
        out.append(final)
