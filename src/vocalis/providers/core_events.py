"""Value events of a sans-I/O provider core (the h11 shape: data in, these out).

A provider's core turns wire events into these plain values and nothing else — no futures,
no channels, no clock — so it runs (and is tested) outside any event loop. The asyncio shell
hands them to `GenerationRouter` (`providers/router.py`), which builds the neutral
`Generation` / `MessageGeneration` streams the runtime consumes. A new provider writes a core
that emits these and reuses the router unchanged.

Accounts: `MessageStarted.account` is the one `ItemAccount` of the item. Only the core writes
it (audio ms, text, final status); `MessageEnded` repeats its final values for readers of the
event stream.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import numpy as np

from vocalis.providers.base import (
    GenerationDone,
    ItemAccount,
    MessageStatus,
    Modality,
    ToolCall,
    ToolCallDelta,
)


@dataclass(frozen=True, slots=True)
class ResponseStarted:
    response_id: str
    # The client's request this answers (`generate_reply`), None for server-initiated ones.
    request_id: str | None


@dataclass(frozen=True, slots=True)
class MessageStarted:
    response_id: str
    item_id: str
    output_index: int
    modalities: tuple[Modality, ...]
    phase: str | None
    account: ItemAccount


@dataclass(frozen=True, slots=True)
class ItemAnnounced:
    """A non-message output item (function call, ...) joined the response."""

    response_id: str
    item_id: str


@dataclass(slots=True)
class AudioDelta:
    """Decoded output audio for an item (hot path: a plain slots class, no frozen setattr)."""

    item_id: str
    samples: np.ndarray
    ms: float


@dataclass(frozen=True, slots=True)
class AudioEnded:
    """No more audio for this item; `text_only` when it turned out to be a text message."""

    item_id: str
    text_only: bool = False


@dataclass(frozen=True, slots=True)
class TextDelta:
    item_id: str
    delta: str


@dataclass(frozen=True, slots=True)
class TextEnded:
    item_id: str


@dataclass(frozen=True, slots=True)
class MessageEnded:
    """The item ended: its account is final (audio and text streams close with it)."""

    item_id: str
    status: MessageStatus
    received_ms: float
    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStreaming:
    response_id: str
    delta: ToolCallDelta


@dataclass(frozen=True, slots=True)
class ToolCallReady:
    """A complete call, exactly once per call id."""

    call: ToolCall


@dataclass(frozen=True, slots=True)
class ResponseEnded:
    """The response ended (done, cancelled, failed, or its connection was lost)."""

    done: GenerationDone


# For `isinstance` routing in shells (audio first: it is by far the most frequent).
CORE_EVENT_TYPES = (
    AudioDelta,
    TextDelta,
    MessageStarted,
    AudioEnded,
    TextEnded,
    MessageEnded,
    ResponseStarted,
    ResponseEnded,
    ItemAnnounced,
    ToolCallStreaming,
    ToolCallReady,
)

CoreEvent: TypeAlias = (
    ResponseStarted
    | MessageStarted
    | ItemAnnounced
    | AudioDelta
    | AudioEnded
    | TextDelta
    | TextEnded
    | MessageEnded
    | ToolCallStreaming
    | ToolCallReady
    | ResponseEnded
)
