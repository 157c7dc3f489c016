"""Response assembly: `response.*` events in, value events (`core_events`) out.

What makes the heard contract hold at this layer:

* audio and text are routed by `item_id`, never by "the current item", so several messages
  per response (gpt-realtime-2 preambles) stay separate even when item A's `.done` events
  arrive after item B's audio started;
* each message has one `ItemAccount` (audio ms, text, final status), counted here and only
  here; every message ends (`MessageEnded`) before its response ends (`ResponseEnded`), also
  when the connection is lost;
* a `ToolCallReady` is emitted exactly once per `call_id`, whichever done-event comes first;
* content for a response or item never announced starts it implicitly (audio is not dropped)
  — and counts against the call's item bound like an announced one (`providers/item_bound`).
"""

from __future__ import annotations

import logging
from typing import Any, cast

from vocalis.providers.base import (
    GenerationDone,
    GenerationStatus,
    ItemAccount,
    MessageStatus,
    OpCompleted,
    ProviderError,
    ProviderLimits,
    ToolCallDelta,
)
from vocalis.providers.core_events import (
    AudioDelta,
    AudioEnded,
    CoreEvent,
    MessageEnded,
    ResponseEnded,
    TextDelta,
    TextEnded,
    ToolCallStreaming,
)
from vocalis.providers.item_bound import ItemBound
from vocalis.providers.limits import TextBounds, admit_item_audio
from vocalis.providers.openai.calls import CallTracker, PendingCall
from vocalis.providers.openai.errors import error_kind
from vocalis.providers.openai.formats import AudioFormat
from vocalis.providers.openai.ops import OpRegistry, Send
from vocalis.providers.openai.responses import Message, ResponseBook, RunningResponse
from vocalis.providers.openai.wire import (
    ArgumentsEvent,
    ContentEvent,
    OutputItemEvent,
    ResponseEvent,
    WireItem,
    optional_str,
    response_cancel_event,
)
from vocalis.utils.logsafe import WarnLimiter

logger = logging.getLogger(__name__)

AssemblyOutput = CoreEvent | ProviderError | OpCompleted[object] | Send

_TEXT_PART_TYPES = frozenset({"text", "output_text"})
_STATUSES = frozenset({"completed", "cancelled", "incomplete", "failed", "disconnected"})
_MESSAGE_STATUSES: frozenset[str] = frozenset({"completed", "incomplete", "cancelled"})


def _message_status(response_status: GenerationStatus) -> MessageStatus:
    if response_status in ("completed", "cancelled", "disconnected"):
        return cast(MessageStatus, response_status)
    return "incomplete"


class ResponseAssembler:
    """`response.*` events of one session in, value events out; the state they create (which
    responses run, their items and accounts) is kept by a `ResponseBook`."""

    def __init__(
        self,
        *,
        audio_format: AudioFormat,
        ops: OpRegistry,
        limits: ProviderLimits,
        bounds: TextBounds,
        item_bound: ItemBound,
        warn: WarnLimiter,
    ) -> None:
        self.audio_format = audio_format
        self.limits = limits
        self._bounds = bounds
        self._ops = ops
        self._warn = warn
        self.book = ResponseBook(warn, item_bound)
        # The book's table, read directly by `_message_for` (one lookup per content delta).
        self._item_response = self.book.item_response
        self._calls = CallTracker(bounds)

    # ----------------------------------------------------------------- queries

    @property
    def output_audio(self) -> bool:
        """The session default (a response may override it)."""
        return self.book.output_audio

    @output_audio.setter
    def output_audio(self, value: bool) -> None:
        self.book.output_audio = value

    @property
    def accounts(self) -> dict[str, ItemAccount]:
        """Item id -> its account, for the whole provider session (the mirror reads it)."""
        return self.book.accounts

    @property
    def running(self) -> bool:
        return self.book.running

    def active_item_ids(self) -> set[str]:
        """Output items of responses still running (never edited by a history sync)."""
        return self.book.active_item_ids()

    def generating(self, item_id: str) -> bool:
        return self.book.generating(item_id)

    def received_ms(self, item_id: str) -> float:
        return self.book.received_ms(item_id)

    # ----------------------------------------------------------------- responses

    def on_response_created(self, ev: ResponseEvent, out: list[AssemblyOutput]) -> None:
        resp = ev["response"]
        response_id = str(resp["id"])
        if response_id in self.book.responses:
            return
        metadata = resp.get("metadata")
        request_id = optional_str(
            metadata.get("client_event_id") if isinstance(metadata, dict) else None
        )
        self.book.start(response_id, request_id, resp.get("output_modalities"), out)
        if request_id is None:
            return
        if self._ops.take_cancel_on_create(request_id):
            # Requested, then abandoned (timeout or cancel) before the server created it.
            out.append(Send(response_cancel_event(self._ops.new_event_id(), response_id)))
        pending = self._ops.pop(request_id)
        if pending is not None:
            if pending.kind == "response.create":
                out.append(OpCompleted(request_id, response_id))
            else:
                self._ops.put_back(pending)

    def on_output_item_added(self, ev: OutputItemEvent, out: list[AssemblyOutput]) -> None:
        response = self.book.response_for(ev, out)
        self.book.announce(response, ev["item"], ev.get("output_index"), out)

    def _message_for(self, ev: ContentEvent, out: list[AssemblyOutput]) -> Message:
        item_id = str(ev["item_id"])
        response = self._item_response.get(item_id)
        if response is not None:
            message = response.messages.get(item_id)
            if message is not None:
                return message
        # Content for an item never announced: announce it now rather than drop audio.
        response = self.book.response_for(ev, out)
        self._warn.warn(
            "implicit_item",
            "content for item %s arrived before response.output_item.added",
            item_id,
        )
        self.book.announce(
            response, {"id": item_id, "type": "message"}, ev.get("output_index"), out
        )
        return response.messages[item_id]

    # ----------------------------------------------------------------- message content

    def on_content_part_added(self, ev: ContentEvent, out: list[AssemblyOutput]) -> None:
        message = self._message_for(ev, out)
        part = ev.get("part")
        part_type = part.get("type") if isinstance(part, dict) else None
        if part_type in _TEXT_PART_TYPES and "audio" in message.modalities:
            # A text part under audio output: no audio will come for this message.
            message.modalities = ("text",)
            message.audio_open = False
            out.append(AudioEnded(message.item_id, text_only=True))

    def on_audio_delta(self, ev: ContentEvent, out: list[AssemblyOutput]) -> None:
        message = self._message_for(ev, out)
        data = ev["delta"]
        if len(data) > self.limits.max_delta_bytes:  # checked before decoding it
            self._warn.warn(
                "delta_bound",
                "dropped an audio delta of %d bytes for %s (bound %d)",
                len(data),
                message.item_id,
                self.limits.max_delta_bytes,
            )
            return
        samples, ms = self.audio_format.decode_b64(data)
        if not admit_item_audio(self.limits, self._warn, message.account, ms):
            return
        out.append(AudioDelta(message.item_id, samples, ms))

    def on_audio_done(self, ev: ContentEvent, out: list[AssemblyOutput]) -> None:
        message = self._message_for(ev, out)
        if message.audio_open:
            message.audio_open = False
            out.append(AudioEnded(message.item_id))

    def on_text_delta(self, ev: ContentEvent, out: list[AssemblyOutput]) -> None:
        message = self._message_for(ev, out)
        delta = str(ev.get("delta") or "")
        if delta and message.text_open:
            self._add_text(message, delta, out)

    def _add_text(self, message: Message, delta: str, out: list[AssemblyOutput]) -> None:
        """Count `delta` into the account, within the item's and the call's text bounds."""
        delta = self._bounds.admit(message.item_id, message.account.text_chars, delta)
        if not delta:
            return
        message.account.add_text(delta)
        out.append(TextDelta(message.item_id, delta))

    def _finish_text(self, message: Message, full: object, out: list[AssemblyOutput]) -> None:
        """End a message's text; add the tail if the server's full text has more."""
        if not message.text_open:
            return
        if isinstance(full, str) and len(full) > message.account.text_chars:
            received = message.account.text
            if full.startswith(received):
                self._add_text(message, full[len(received) :], out)
        message.text_open = False
        out.append(TextEnded(message.item_id))

    def on_transcript_done(self, ev: ContentEvent, out: list[AssemblyOutput]) -> None:
        self._finish_text(self._message_for(ev, out), ev.get("transcript"), out)

    def on_text_done(self, ev: ContentEvent, out: list[AssemblyOutput]) -> None:
        self._finish_text(self._message_for(ev, out), ev.get("text"), out)

    def _end_message(
        self, message: Message, status: MessageStatus, out: list[AssemblyOutput]
    ) -> None:
        """The account becomes final (once); the message's streams end with it."""
        account = message.account
        if account.status is not None:
            return
        account.status = status
        message.audio_open = message.text_open = False
        out.append(MessageEnded(message.item_id, status, account.received_ms, account.text))

    def on_output_item_done(self, ev: OutputItemEvent, out: list[AssemblyOutput]) -> None:
        item = ev["item"]
        item_id = str(item["id"])
        response = self._item_response.get(item_id)
        if response is None:
            response = self.book.response_for(ev, out)
            self.book.announce(response, item, ev.get("output_index"), out)
        item_type = item.get("type", "message")
        if item_type == "message":
            message = response.messages[item_id]
            status = str(item.get("status") or "completed")
            if status == "completed":
                self._end_message(message, "completed", out)
                return
            # Stopped early (cancelled by a barge-in, cut by a limit): its streams end now;
            # its status becomes final with the response, whose end says why.
            message.stopped = cast(
                MessageStatus, status if status in _MESSAGE_STATUSES else "incomplete"
            )
            if message.audio_open:
                message.audio_open = False
                out.append(AudioEnded(item_id))
            if message.text_open:
                message.text_open = False
                out.append(TextEnded(item_id))
        elif item_type == "function_call":
            self._emit_call(
                response, item_id, item.get("call_id"), item.get("name"), item.get("arguments"), out
            )

    # ----------------------------------------------------------------- function calls

    def _call_for(
        self, ev: ArgumentsEvent, out: list[AssemblyOutput]
    ) -> tuple[RunningResponse, PendingCall]:
        item_id = str(ev["item_id"])
        response = self._item_response.get(item_id) or self.book.response_for(ev, out)
        call = response.calls.get(item_id)
        if call is None:
            item: WireItem = {"id": item_id, "type": "function_call"}
            if ev.get("call_id") is not None:
                item["call_id"] = str(ev.get("call_id"))
            if ev.get("name") is not None:
                item["name"] = str(ev.get("name"))
            self.book.announce(response, item, ev.get("output_index"), out)
            call = response.calls[item_id]
        return response, call

    def on_arguments_delta(self, ev: ArgumentsEvent, out: list[AssemblyOutput]) -> None:
        response, call = self._call_for(ev, out)
        delta = str(ev.get("delta") or "")
        if not call.call_id and ev.get("call_id"):
            call.call_id = str(ev.get("call_id"))
        delta = self._calls.take(call, delta)
        if not delta:
            return
        out.append(
            ToolCallStreaming(
                response.response_id, ToolCallDelta(call.item_id, call.call_id, call.name, delta)
            )
        )

    def on_arguments_done(self, ev: ArgumentsEvent, out: list[AssemblyOutput]) -> None:
        response, call = self._call_for(ev, out)
        self._emit_call(
            response, call.item_id, ev.get("call_id"), ev.get("name"), ev.get("arguments"), out
        )

    def _emit_call(
        self,
        response: RunningResponse,
        item_id: str,
        call_id: object,
        name: object,
        arguments: object,
        out: list[AssemblyOutput],
    ) -> None:
        ready = self._calls.complete(
            response.response_id, response.calls, item_id, call_id, name, arguments
        )
        if ready is not None:
            out.append(ready)

    # ----------------------------------------------------------------- the end of a response

    def on_response_done(self, ev: ResponseEvent, out: list[AssemblyOutput]) -> None:
        resp = ev["response"]
        response_id = str(resp["id"])
        response = self.book.responses.get(response_id)
        raw_status = str(resp.get("status") or "completed")
        status = cast(GenerationStatus, raw_status if raw_status in _STATUSES else "failed")
        details = resp.get("status_details")
        details = details if isinstance(details, dict) else {}
        error = details.get("error")
        error_code = optional_str(error.get("code") if isinstance(error, dict) else None)
        if response is None:
            # Seen in production during interruptions: a done with no created. Nothing is
            # waiting on it, so there is nothing to end.
            logger.debug("response.done for unknown response %s (%s)", response_id, status)
            return
        output = resp.get("output")
        for item in output if isinstance(output, list) else ():
            if isinstance(item, dict) and "id" in item:
                self.book.announce(response, item, None, out)
                if item.get("type") == "function_call" and item.get("status") == "completed":
                    self._emit_call(
                        response,
                        str(item["id"]),
                        item.get("call_id"),
                        item.get("name"),
                        item.get("arguments"),
                        out,
                    )
        usage = resp.get("usage")
        done = GenerationDone(
            response_id=response_id,
            status=status,
            reason=optional_str(details.get("reason")),
            error_code=error_code,
            output_item_ids=tuple(response.announced),
            usage=usage if isinstance(usage, dict) else None,
        )
        self._finish(response, done, out)
        if status == "failed":
            message = error.get("message") if isinstance(error, dict) else None
            out.append(
                ProviderError(
                    error_kind(error_code),
                    str(message or f"response {response_id} failed"),
                    error_code,
                    operation="response",
                )
            )
        # Last: past the item bound this raises, and the call ends after what came before.
        self.book.ended_without_items(response)

    def _finish(self, response: RunningResponse, done: GenerationDone, out: list[Any]) -> None:
        """End every message of `response` still open, then the response (exactly once)."""
        self.book.close(response)
        status = _message_status(done.status)
        for message in response.messages.values():
            early = message.stopped if done.status == "completed" else None
            self._end_message(message, early or status, out)
        out.append(ResponseEnded(done))

    def connection_lost(self, reason: str, out: list[Any]) -> None:
        """Every running response ends as "disconnected" (its messages first)."""
        for response in list(self.book.responses.values()):
            done = GenerationDone(
                response.response_id,
                "disconnected",
                reason,
                output_item_ids=tuple(response.announced),
            )
            self._finish(response, done, out)
        self._item_response.clear()

    def reset(self) -> None:
        """A fresh provider session: item ids (and their accounts) start over."""
        self.book.accounts.clear()
