"""A scripted in-memory `RealtimeSession` for runtime unit tests.

The conformance tests use the real sim server and OpenAI client; these tests need shapes the
wire protocol makes awkward (text-only messages under audio output, a provider that never
acknowledges a cancel) and must run without sockets. The fake records every operation.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vocalis.conversation.items import ConversationItem
from vocalis.providers.base import (
    Capabilities,
    Generation,
    GenerationDone,
    GenerationStarted,
    GenerationStatus,
    MessageGeneration,
    Modality,
    ProviderEvent,
    RealtimeSession,
    SessionClosed,
    SessionOptions,
    ToolCall,
)
from vocalis.runtime.agent import Agent
from vocalis.runtime.session import AgentSession
from vocalis.transports.base import Transport
from vocalis.utils.channel import Channel
from vocalis.utils.clock import ManualClock


@dataclass
class FakeMessage:
    text: str
    audio_ms: float = 0.0
    modalities: tuple[Modality, ...] = ("audio", "text")
    lead_silence_ms: float = 0.0


@dataclass
class FakeResponse:
    messages: list[FakeMessage] = field(default_factory=list)
    calls: list[tuple[str, str, str]] = field(default_factory=list)  # (call_id, name, args)
    # False: the response stays open (a stall) until cancelled or finished by the test.
    finish: bool = True
    ack_cancel: bool = True


def tone(ms: float, rate: int = 24000) -> np.ndarray:
    n = int(ms * rate / 1000)
    return (np.sin(np.arange(n) / rate * 2 * np.pi * 220) * 8000).astype(np.int16)


class FakeSession(RealtimeSession):
    def __init__(self, capabilities: Capabilities | None = None) -> None:
        self._caps = capabilities or Capabilities()
        self._events: Channel[ProviderEvent] = Channel()
        self._ids = itertools.count(1)
        self.script: list[FakeResponse] = []
        self.ops: list[tuple[str, Any]] = []
        self.options: list[SessionOptions] = []
        self.appended_samples = 0
        self.active: dict[str, tuple[Generation, FakeResponse]] = {}
        self.closed = False
        self.on_generate: Callable[[Generation], None] | None = None

    @property
    def capabilities(self) -> Capabilities:
        return self._caps

    async def events(self) -> AsyncIterator[ProviderEvent]:
        async for event in self._events:
            yield event

    async def forward_events(self, callback: Callable[[ProviderEvent], None]) -> None:
        # Like the real providers: each event inside the step that emits it.
        await self._events.forward_until_closed(callback)

    def emit(self, event: ProviderEvent) -> None:
        self._events.send(event)

    async def update_options(self, options: SessionOptions) -> None:
        self.options.append(options)

    def append_audio(self, samples: np.ndarray) -> None:
        self.appended_samples += int(samples.shape[0])

    async def commit_audio(self) -> None:
        self.ops.append(("commit", None))

    async def clear_audio(self) -> None:
        self.ops.append(("clear", None))

    async def generate_reply(
        self,
        *,
        instructions: str | None = None,
        tool_choice: str | None = None,
        output_modalities: Sequence[Modality] | None = None,
    ) -> Generation:
        self.ops.append(
            ("response.create", {"instructions": instructions, "tool_choice": tool_choice})
        )
        spec = self.script.pop(0) if self.script else FakeResponse([FakeMessage("ok", 200)])
        return self.start_response(spec, request_id=f"req_{next(self._ids)}")

    def start_response(self, spec: FakeResponse, request_id: str | None = None) -> Generation:
        generation = Generation(response_id=f"resp_{next(self._ids)}", request_id=request_id)
        self.active[generation.response_id] = (generation, spec)
        self.emit(GenerationStarted(generation))
        for index, msg in enumerate(spec.messages):
            item_id = f"item_{next(self._ids)}"
            message = MessageGeneration(
                item_id=item_id,
                response_id=generation.response_id,
                output_index=index,
                modalities=msg.modalities,
            )
            generation.announced_item_ids.append(item_id)
            generation.messages.send(message)
            if "audio" in msg.modalities and msg.audio_ms:
                if msg.lead_silence_ms:
                    message.audio.send(np.zeros(int(msg.lead_silence_ms * 24), dtype=np.int16))
                message.audio.send(tone(msg.audio_ms))
                message.account.received_ms = msg.audio_ms + msg.lead_silence_ms
            if msg.text:
                message.text.send(msg.text)
                message.account.add_text(msg.text)
            if spec.finish:
                message.account.status = "completed"
                message.audio.close()
                message.text.close()
        for call_id, name, args in spec.calls:
            item_id = f"item_{next(self._ids)}"
            generation.announced_item_ids.append(item_id)
            generation.tool_calls.send(
                ToolCall(item_id, call_id, name, args, generation.response_id)
            )
        if spec.finish:
            self.finish(generation, "completed")
        return generation

    def finish(self, generation: Generation, status: GenerationStatus) -> None:
        self.active.pop(generation.response_id, None)
        for channel in (generation.messages, generation.tool_calls, generation.tool_call_deltas):
            channel.close()
        if not generation.done.done():
            generation.done.set_result(
                GenerationDone(
                    generation.response_id,
                    status,
                    output_item_ids=tuple(generation.announced_item_ids),
                )
            )

    async def cancel_response(self, response_id: str | None = None) -> None:
        self.ops.append(("response.cancel", response_id))
        for rid, (generation, spec) in list(self.active.items()):
            if response_id in (None, rid) and spec.ack_cancel:
                self.finish(generation, "cancelled")

    async def truncate(self, item_id: str, audio_end_ms: float) -> None:
        self.ops.append(("truncate", (item_id, audio_end_ms)))

    async def delete_item(self, item_id: str) -> None:
        self.ops.append(("delete", item_id))

    async def create_item(self, item: ConversationItem, previous_item_id: str | None = None) -> str:
        self.ops.append(("create", item))
        return item.id or f"item_{next(self._ids)}"

    async def send_tool_output(
        self, call_id: str, output: str, *, item_id: str | None = None
    ) -> str:
        self.ops.append(("tool_output", (call_id, output)))
        return item_id or f"out_{next(self._ids)}"

    async def sync_history(self, items: Sequence[ConversationItem]) -> None:
        self.ops.append(("sync", len(items)))

    async def aclose(self) -> None:
        self.closed = True
        self.emit(SessionClosed("closed"))
        self._events.close()

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.ops]


@contextlib.asynccontextmanager
async def session_on(
    provider: FakeSession, transport: Transport, clock: ManualClock | None = None
) -> AsyncIterator[AgentSession]:
    """A started session on `provider` and `transport` (on `clock`, else a manual clock of
    its own), closed after."""
    session = AgentSession(provider, transport, clock=clock or ManualClock())
    await session.start(Agent("Test agent."))
    try:
        yield session
    finally:
        await session.aclose()
        await transport.aclose()
