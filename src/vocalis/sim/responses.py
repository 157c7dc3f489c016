"""Response lifecycle: the exact GA event sequence of one response, as a pull-based stream.

Sans-I/O. A :class:`ResponseRun` turns a :class:`ResponsePlan` into server events (without
``event_id``; the session adds it) and mutates the conversation as a real server would: items
appear at ``conversation.item.added``, audio and transcript grow with every delta, statuses are
final at ``*.done``. The shell pulls ``(at_ms, event)`` pairs from :meth:`ResponseRun.stream`,
where ``at_ms`` is the position on the response's audio timeline at which the event is due
(the shell converts it to wall time with ``pace``). Between pulls the shell may call
:meth:`cancel` or :meth:`fail`, which return the closing events for every open item plus
``response.done``, exactly once.

Per message item (audio): ``output_item.added``, ``conversation.item.added``,
``content_part.added``, interleaved ``output_audio_transcript.delta`` (one per word, sent no
later than the word's first audio byte, ``lookahead_ms`` earlier when possible) and
``output_audio.delta`` (20–200 ms chunks), then ``output_audio.done``,
``output_audio_transcript.done``, ``content_part.done``, ``output_item.done``,
``conversation.item.done``. Text items use ``output_text.delta/.done``; function calls use
``function_call_arguments.delta/.done`` and no content part.

Orderings of a multi-item response: ``sequential`` closes each item before the next is added;
``overlapping`` (observed with gpt-realtime-2) adds the next item and streams its first
content delta *before* the previous item's done events.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from vocalis.sim.brain import PlannedCall, PlannedItem, PlannedMessage, ResponsePlan
from vocalis.sim.conversation import Conversation, Item, WordSpan
from vocalis.sim.ids import IdFactory
from vocalis.sim.mcp import PlannedMcpApproval, PlannedMcpCall, call_result_events, mcp_item
from vocalis.sim.response_context import ResponseContext, usage_object
from vocalis.sim.session_config import bytes_per_ms
from vocalis.sim.voice import (
    Speech,
    SpeechKey,
    cached,
    chunks_cut_at,
    speak,
    text_word_times,
    voice_for,
)

Event = dict[str, Any]
_ARGS_CHUNK = 16
_ARGS_STEP_MS = 10.0
_TEXT_WORD_MS = 60000.0 / 175
_CONTENT_DELTAS = (
    "response.output_audio.delta",
    "response.output_text.delta",
    "response.function_call_arguments.delta",
    "response.mcp_call_arguments.delta",
)


@dataclass(eq=False)
class _Out:
    """Runtime state of one output item."""

    index: int
    plan: PlannedItem
    item: Item
    speech: Speech | None = None
    added: bool = False
    part_added: bool = False
    done: bool = False
    audio_ms: float = 0.0
    text_sent: str = ""
    extras: dict[str, Any] = field(default_factory=dict)


def _stable_seed(*parts: object) -> int:
    """A run-to-run stable seed (``hash()`` of str is salted per process)."""
    value = 1469598103934665603
    for byte in "\x1f".join(map(str, parts)).encode():
        value = ((value ^ byte) * 1099511628211) & 0xFFFFFFFFFFFF
    return value


class ResponseRun:
    """One response from ``response.created`` to ``response.done``."""

    def __init__(
        self,
        ctx: ResponseContext,
        plan: ResponsePlan,
        *,
        conversation: Conversation | None,
        ids: IdFactory,
    ) -> None:
        self.ctx = ctx
        self.plan = plan
        self.id = ctx.response_id
        self.conversation = conversation  # None for out-of-band responses
        self.status = "in_progress"
        self.status_details: dict[str, Any] | None = None
        self.finished = False
        self._ids = ids
        self._outs = [self._prepare(index, planned) for index, planned in enumerate(plan.items)]
        # Audio positions (per output index) where a scripted fault fires: a chunk boundary
        # is placed exactly there, so the fault does not fire up to a chunk late.
        self._fault_cuts: dict[int, list[float]] = {}
        for fault in plan.faults:
            if fault.after_audio_ms is not None:
                position = fault.after_audio_ms
                self._fault_cuts.setdefault(position.item, []).append(position.ms)
        self._stream: Generator[float | Event, None, None] | None = None

    @property
    def items(self) -> list[Item]:
        return [out.item for out in self._outs]

    def item_audio_ms(self, output_index: int) -> float:
        """Audio streamed so far for output item ``output_index``."""
        return self._outs[output_index].audio_ms

    # --- preparation ----------------------------------------------------------------------

    def _prepare(self, index: int, planned: PlannedItem) -> _Out:
        if isinstance(planned, PlannedMcpCall | PlannedMcpApproval):
            return _Out(index, planned, mcp_item(planned, self._ids.new("item"), self.id))
        if isinstance(planned, PlannedCall):
            item = Item(
                id=self._ids.new("item"),
                type="function_call",
                status="in_progress",
                call_id=planned.call_id or self._ids.new("call"),
                name=planned.name,
                arguments="",
                phase=planned.phase,
                response_id=self.id,
            )
            return _Out(index, planned, item)
        fmt = self.ctx.output_format
        item = Item(
            id=self._ids.new("item"),
            type="message",
            role="assistant",
            status="in_progress",
            phase=planned.phase,
            bytes_per_ms=bytes_per_ms(fmt),
            response_id=self.id,
        )
        return _Out(index, planned, item)

    def _speech_key(self, planned: PlannedMessage) -> SpeechKey:
        return SpeechKey(
            planned.text,
            voice_for(self.ctx.voice, planned.voice),
            self.ctx.output_format["type"],
            self.ctx.speed,
            _stable_seed(self.ctx.seed, planned.text),
            planned.leading_silence_ms,
        )

    @property
    def needs_synthesis(self) -> bool:
        """True when :meth:`prepare` would synthesize (worth running in a worker thread)."""
        return self.ctx.audio and any(
            cached(self._speech_key(out.plan)) is None
            for out in self._outs
            if isinstance(out.plan, PlannedMessage) and out.speech is None
        )

    def prepare(self) -> None:
        """Render the speech of every message (thread-safe; idempotent). Touches no
        conversation state, so the shell may run it in a worker thread."""
        if not self.ctx.audio:
            return
        for out in self._outs:
            if isinstance(out.plan, PlannedMessage) and out.speech is None:
                out.speech = speak(*self._speech_key(out.plan))

    # --- wire shapes ---------------------------------------------------------------------

    def response_object(self, *, final: bool) -> dict[str, Any]:
        return {
            "object": "realtime.response",
            "id": self.id,
            "status": self.status,
            "status_details": self.status_details,
            "output": [out.item.to_wire() for out in self._outs if out.added] if final else [],
            "conversation_id": self.ctx.conversation_id,
            "output_modalities": list(self.ctx.output_modalities),
            "max_output_tokens": self.ctx.max_output_tokens,
            "audio": {"output": {"format": dict(self.ctx.output_format), "voice": self.ctx.voice}},
            "usage": self.usage() if final else None,
            "metadata": self.ctx.metadata,
        }

    def created_event(self) -> Event:
        return {"type": "response.created", "response": self.response_object(final=False)}

    def usage(self) -> dict[str, Any]:
        """Token usage from a deterministic formula (see :func:`usage_object`)."""
        out_text = sum(math.ceil(len(out.text_sent) / 4) for out in self._outs if out.added)
        out_audio = sum(math.ceil(out.audio_ms / 50) for out in self._outs if out.added)
        return usage_object(
            self.ctx.input_text_tokens, self.ctx.input_audio_tokens, out_text, out_audio
        )

    def _output_tokens(self) -> int:
        return int(self.usage()["output_tokens"])

    def _scoped(self, out: _Out, event_type: str, **fields: Any) -> Event:
        event: Event = {"type": event_type, "response_id": self.id}
        if out.item.type == "message" and event_type != "response.output_item.added":
            event["item_id"] = out.item.id
        event["output_index"] = out.index
        event.update(fields)
        return event

    def _output_item(self, out: _Out, event_type: str, wire: dict[str, Any]) -> Event:
        return {"type": event_type, "response_id": self.id, "output_index": out.index, "item": wire}

    def _part(self, out: _Out) -> dict[str, Any]:
        if self.ctx.audio:
            return {"type": "audio", "transcript": out.text_sent}
        return {"type": "text", "text": out.text_sent}

    # --- the stream -------------------------------------------------------------------------

    def stream(self) -> Iterator[float | Event]:
        """The events after ``response.created``, ending with ``response.done``.

        A ``float`` element is a pacing point: the position (ms on the response's audio
        timeline) that must be reached before pulling further. State changes (audio appended
        to the item, words added to the transcript) happen only when the next event is
        pulled, so a response stopped at a pacing point holds exactly what was sent.
        """
        if self._stream is None:
            self.prepare()
            self._stream = self._generate()
        return self._stream

    def _generate(self) -> Generator[float | Event, None, None]:
        overlapping = self.plan.ordering == "overlapping"
        base = 0.0
        pending: _Out | None = None  # overlapping: the previous item, still open
        for out in self._outs:
            yield base
            yield from self._head(out)
            at = base
            for element in self._body(out, base):
                yield element
                if isinstance(element, float):
                    at = element
                    continue
                if pending is not None and element["type"] in _CONTENT_DELTAS:
                    yield from self._tail(pending, "completed")
                    pending = None
                if self._over_budget():
                    yield from self._finish("incomplete", "max_output_tokens", inside=True)
                    return
            if pending is not None:  # the body streamed nothing (empty, truncated, deleted)
                yield from self._tail(pending, "completed")
                pending = None
            if out.speech is not None:
                base += out.audio_ms
            else:
                base = at + (_TEXT_WORD_MS if out.item.type == "message" else _ARGS_STEP_MS)
            if overlapping:
                pending = out
            else:
                yield base
                yield from self._tail(out, "completed")
        yield base
        if pending is not None:
            yield from self._tail(pending, "completed")
        self.status = "completed"
        self.finished = True
        yield {"type": "response.done", "response": self.response_object(final=True)}

    def _over_budget(self) -> bool:
        cap = self.ctx.max_output_tokens
        return isinstance(cap, int) and self._output_tokens() >= cap

    def _head(self, out: _Out) -> Iterator[Event]:
        item = out.item
        out.added = True
        wire = item.to_wire()
        yield self._output_item(out, "response.output_item.added", wire)
        if self.conversation is not None:
            previous = self.conversation.insert(item)
            yield {"type": "conversation.item.added", "previous_item_id": previous, "item": wire}
        if item.type == "message":
            out.part_added = True
            part = self._part(out)
            item.content.append(
                {"type": "output_audio", "transcript": ""}
                if self.ctx.audio
                else {"type": "output_text", "text": ""}
            )
            yield self._scoped(out, "response.content_part.added", content_index=0, part=part)

    def _alive(self, out: _Out) -> bool:
        """False once the client truncated or deleted the item: stop generating into it."""
        if out.item.truncated_at_ms is not None:
            return False
        return self.conversation is None or out.item.id in self.conversation

    def _add_text(self, out: _Out, word: WordSpan) -> None:
        out.text_sent += word.text
        out.item.words.append(word)
        key = "transcript" if self.ctx.audio else "text"
        out.item.content[0][key] = out.text_sent

    def _arguments(self, out: _Out, base: float, args: str) -> Iterator[float | Event]:
        """A call's arguments in chunks (function calls name their call id, MCP calls not)."""
        mcp = out.item.type == "mcp_call"
        event_type = f"response.{'mcp_call' if mcp else 'function_call'}_arguments.delta"
        for step, start in enumerate(range(0, len(args), _ARGS_CHUNK)):
            yield base + step * _ARGS_STEP_MS
            if not self._alive(out):
                return
            delta = args[start : start + _ARGS_CHUNK]
            out.text_sent += delta
            out.item.arguments = out.text_sent
            ids: dict[str, Any] = {"item_id": out.item.id}
            if not mcp:
                ids["call_id"] = out.item.call_id
            yield self._scoped(out, event_type, **ids, delta=delta)

    def _body(self, out: _Out, base: float) -> Iterator[float | Event]:
        plan = out.plan
        if isinstance(plan, PlannedCall | PlannedMcpCall):
            yield from self._arguments(out, base, plan.arguments)
            return
        if isinstance(plan, PlannedMcpApproval):
            return
        assert isinstance(plan, PlannedMessage)
        if out.speech is None:
            for word in text_word_times(plan.text):
                yield base + word.start_ms
                if not self._alive(out):
                    return
                self._add_text(out, word)
                yield self._scoped(
                    out, "response.output_text.delta", content_index=0, delta=word.text
                )
            return
        speech = out.speech
        words = speech.words
        lookahead = self.ctx.lookahead_ms
        next_word = 0
        last_at = base
        position = 0
        for chunk in chunks_cut_at(speech, self._fault_cuts.get(out.index, ())):
            chunk_end = chunk.start_ms + chunk.duration_ms
            while next_word < len(words) and words[next_word].start_ms - lookahead < chunk_end:
                word = words[next_word]
                last_at = max(last_at, base + min(chunk.start_ms, word.start_ms - lookahead))
                yield last_at
                if not self._alive(out):
                    return
                next_word += 1
                self._add_text(out, word)
                yield self._scoped(
                    out, "response.output_audio_transcript.delta", content_index=0, delta=word.text
                )
            last_at = max(last_at, base + chunk.start_ms)
            yield last_at
            if not self._alive(out):
                return
            position += chunk.nbytes
            out.item.share_audio(speech.audio, position)
            out.audio_ms = chunk_end
            yield self._scoped(out, "response.output_audio.delta", content_index=0, delta=chunk.b64)
        while next_word < len(words) and self._alive(out):
            self._add_text(out, words[next_word])
            yield self._scoped(
                out,
                "response.output_audio_transcript.delta",
                content_index=0,
                delta=words[next_word].text,
            )
            next_word += 1

    def _tail(self, out: _Out, status: str) -> Iterator[Event]:
        if out.done or not out.added:
            return
        out.done = True
        item = out.item
        if isinstance(out.plan, PlannedMcpCall):
            yield from call_result_events(
                item, out.plan, lambda kind: self._scoped(out, kind, item_id=item.id)
            )
        elif item.type == "function_call":
            yield self._scoped(
                out,
                "response.function_call_arguments.done",
                item_id=item.id,
                call_id=item.call_id,
                name=item.name,
                arguments=item.arguments,
            )
        elif out.part_added:
            if self.ctx.audio:
                transcript = item.content[0].get("transcript", "")
                yield self._scoped(out, "response.output_audio.done", content_index=0)
                yield self._scoped(
                    out,
                    "response.output_audio_transcript.done",
                    content_index=0,
                    transcript=transcript,
                )
                part = {"type": "audio", "transcript": transcript}
            else:
                text = item.content[0].get("text", "")
                yield self._scoped(out, "response.output_text.done", content_index=0, text=text)
                part = {"type": "text", "text": text}
            yield self._scoped(out, "response.content_part.done", content_index=0, part=part)
        item.status = status
        wire = item.to_wire()
        yield self._output_item(out, "response.output_item.done", wire)
        if self.conversation is not None and item.id in self.conversation:
            yield {
                "type": "conversation.item.done",
                "previous_item_id": self.conversation.previous_id(item.id),
                "item": wire,
            }

    # --- endings ----------------------------------------------------------------------------

    def _finish(
        self, status: str, reason: str | None, error: Any = None, *, inside: bool = False
    ) -> list[Event]:
        if self.finished:
            return []
        events: list[Event] = []
        for out in self._outs:
            events.extend(self._tail(out, "incomplete"))
        self.status = status
        if status == "failed":
            self.status_details = {"type": "failed", "error": error}
        else:
            self.status_details = {"type": status, "reason": reason}
        self.finished = True
        if self._stream is not None and not inside:
            self._stream.close()
        events.append({"type": "response.done", "response": self.response_object(final=True)})
        return events

    def cancel(self, reason: str) -> list[Event]:
        """Close open items as ``incomplete`` and end with ``status: cancelled``; ``reason`` is
        ``client_cancelled`` or ``turn_detected``."""
        return self._finish("cancelled", reason)

    def end_incomplete(self, reason: str) -> list[Event]:
        """End early with ``status: incomplete`` (``reason`` e.g. ``max_output_tokens``): open
        items ``incomplete``, their transcript as far as it was sent (it may run ahead of the
        audio)."""
        return self._finish("incomplete", reason)

    def fail(self, error: dict[str, Any]) -> list[Event]:
        """End the response with ``status: failed`` and ``status_details.error = error``."""
        return self._finish("failed", None, error)
