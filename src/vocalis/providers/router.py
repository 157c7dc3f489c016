"""Turns a sans-I/O core's value events into the runtime's `Generation` streams.

This is the provider shell's half of the boundary (it needs a running event loop: channels
and the `done` future live here, not in the core). It is provider-neutral: any core that
emits `core_events` gets correct streams from it —

* each message's audio and text channels close when the core says the item (or its audio /
  text part) ended, and every channel of a response closes at `ResponseEnded`;
* `Generation.done` resolves exactly once, with the core's `GenerationDone`;
* audio is handed to `Channel.send` synchronously inside the shell's receive callback, so a
  consumer that `forward_to`s the channel gets each chunk with no task hop (the zero-hop
  audio path: provider delta -> sink push in one call stack).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vocalis.providers.base import Generation, GenerationStarted, MessageGeneration
from vocalis.providers.core_events import (
    AudioDelta,
    AudioEnded,
    CoreEvent,
    ItemAnnounced,
    MessageEnded,
    MessageStarted,
    ResponseEnded,
    ResponseStarted,
    TextDelta,
    TextEnded,
    ToolCallReady,
    ToolCallStreaming,
)


class GenerationRouter:
    """Live generations of one session, fed by `route(event)`."""

    def __init__(self, emit: Callable[[GenerationStarted], None]) -> None:
        self._emit = emit
        self._generations: dict[str, Generation] = {}
        self._messages: dict[str, MessageGeneration] = {}
        # Requests whose `Generation` a caller will `claim` (generate_reply is waiting).
        self._expected: set[str] = set()
        self._claimable: dict[str, Generation] = {}
        self._handlers: dict[type[Any], Callable[[Any], None]] = {
            AudioDelta: self._audio,
            TextDelta: self._text,
            ResponseStarted: self._response_started,
            MessageStarted: self._message_started,
            ItemAnnounced: self._item_announced,
            AudioEnded: self._audio_ended,
            TextEnded: self._text_ended,
            MessageEnded: self._message_ended,
            ToolCallStreaming: self._tool_delta,
            ToolCallReady: self._tool_ready,
            ResponseEnded: self._response_ended,
        }

    @property
    def active(self) -> list[Generation]:
        """Generations whose response has not ended."""
        return list(self._generations.values())

    def route(self, event: CoreEvent) -> None:
        self._handlers[type(event)](event)

    # ----------------------------------------------------------------- request correlation

    def expect(self, request_id: str) -> None:
        """A caller will `claim` the generation answering `request_id`."""
        self._expected.add(request_id)

    def claim(self, request_id: str) -> Generation | None:
        """The generation that answered `request_id` (once); stops expecting it."""
        self._expected.discard(request_id)
        return self._claimable.pop(request_id, None)

    # ----------------------------------------------------------------- handlers

    def _audio(self, event: AudioDelta) -> None:
        message = self._messages.get(event.item_id)
        if message is not None:
            message.audio.send(event.samples)

    def _text(self, event: TextDelta) -> None:
        message = self._messages.get(event.item_id)
        if message is not None:
            message.text.send(event.delta)

    def _response_started(self, event: ResponseStarted) -> None:
        generation = Generation(response_id=event.response_id, request_id=event.request_id)
        self._generations[event.response_id] = generation
        if event.request_id is not None and event.request_id in self._expected:
            self._claimable[event.request_id] = generation
        self._emit(GenerationStarted(generation))

    def _message_started(self, event: MessageStarted) -> None:
        generation = self._generations.get(event.response_id)
        if generation is None:
            return
        message = MessageGeneration(
            item_id=event.item_id,
            response_id=event.response_id,
            output_index=event.output_index,
            modalities=event.modalities,
            phase=event.phase,
            account=event.account,
        )
        if "audio" not in event.modalities:
            message.audio.close()
        self._messages[event.item_id] = message
        generation.announced_item_ids.append(event.item_id)
        generation.messages.send(message)

    def _item_announced(self, event: ItemAnnounced) -> None:
        generation = self._generations.get(event.response_id)
        if generation is not None:
            generation.announced_item_ids.append(event.item_id)

    def _audio_ended(self, event: AudioEnded) -> None:
        message = self._messages.get(event.item_id)
        if message is None:
            return
        if event.text_only:
            message.modalities = ("text",)
        message.audio.close()

    def _text_ended(self, event: TextEnded) -> None:
        message = self._messages.get(event.item_id)
        if message is not None:
            message.text.close()

    def _message_ended(self, event: MessageEnded) -> None:
        message = self._messages.pop(event.item_id, None)
        if message is not None:
            message.audio.close()
            message.text.close()

    def _tool_delta(self, event: ToolCallStreaming) -> None:
        generation = self._generations.get(event.response_id)
        if generation is not None:
            generation.tool_call_deltas.send(event.delta)

    def _tool_ready(self, event: ToolCallReady) -> None:
        generation = self._generations.get(event.call.response_id)
        if generation is not None:
            generation.tool_calls.send(event.call)

    def _response_ended(self, event: ResponseEnded) -> None:
        done = event.done
        generation = self._generations.pop(done.response_id, None)
        if generation is None:
            return
        for item_id in generation.announced_item_ids:
            message = self._messages.pop(item_id, None)
            if message is not None:  # the core ends every message first; never left open
                message.audio.close()
                message.text.close()
        generation.messages.close()
        generation.tool_calls.close()
        generation.tool_call_deltas.close()
        if not generation.done.done():
            generation.done.set_result(done)
