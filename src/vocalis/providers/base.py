"""The provider-neutral realtime interface.

The runtime never knows which provider it talks to. A provider turns its wire protocol into:

* a `Generation` per response, carrying a *stream of messages* (one per provider message item,
  in playback order, each with its own audio and text streams) and a stream of tool calls —
  because modern models (gpt-realtime-2 preambles) answer with several messages per response;
* session-level events (`ProviderEvent`): speech started/stopped, input transcription,
  errors, reconnects;
* operations the runtime needs to keep the provider's memory equal to what was heard:
  truncate, delete, create items, and a minimal history sync.

`Capabilities` say what a provider can do so the runtime adapts instead of special-casing.
Every stream here is a `Channel` that the provider *must* close (also on errors and
disconnects): a consumer can never wait forever on a dead response.
"""

from __future__ import annotations

import abc
import asyncio
import enum
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeAlias, TypeVar

import numpy as np

from vocalis.conversation.items import ConversationItem
from vocalis.providers.limits import ProviderLimits as ProviderLimits
from vocalis.utils.channel import Channel

Modality = Literal["audio", "text"]
# How one output message ended ("incomplete": the provider stopped it, e.g. a token limit).
MessageStatus = Literal["completed", "incomplete", "cancelled", "disconnected"]
# How a response ended; "abandoned" is the runtime's own verdict when the provider never
# acknowledged the end (see runtime/response.py).
GenerationStatus = Literal[
    "completed", "cancelled", "incomplete", "failed", "disconnected", "abandoned"
]


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a provider supports; the runtime branches on these, never on provider names."""

    server_vad: bool = True
    # The server cancels a running response itself when the caller starts speaking.
    server_interrupts_response: bool = True
    # `truncate(item, ms)` exists (OpenAI: conversation.item.truncate).
    truncation: bool = True
    # Items can be deleted/created by id (history edits, sync after reconnect).
    mutable_history: bool = True
    # Responses can be text-only (output_modalities ["text"]).
    text_only_output: bool = True
    # A response may contain several assistant messages (preambles).
    multi_message_responses: bool = True
    # Manual turn control (commit + generate_reply) when VAD is off.
    manual_turns: bool = True
    # Streaming function-call arguments.
    streaming_tool_arguments: bool = True
    input_sample_rate: int = 24000
    output_sample_rate: int = 24000


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A function tool as the model sees it (JSON schema for its parameters)."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class TurnDetection:
    type: Literal["server_vad", "semantic_vad"] = "server_vad"
    threshold: float | None = None
    prefix_padding_ms: int | None = None
    silence_duration_ms: int | None = None
    eagerness: Literal["low", "medium", "high", "auto"] | None = None
    create_response: bool = True
    interrupt_response: bool = True
    idle_timeout_ms: int | None = None


@dataclass(frozen=True, slots=True)
class SessionOptions:
    """Provider-neutral session settings. `None` means "provider default / leave unchanged"."""

    instructions: str | None = None
    voice: str | None = None
    output_modalities: tuple[Modality, ...] = ("audio",)
    # None disables turn detection (manual turns).
    turn_detection: TurnDetection | None = field(default_factory=TurnDetection)
    input_transcription_model: str | None = None
    input_transcription_language: str | None = None
    reasoning_effort: Literal["minimal", "low", "medium", "high", "xhigh"] | None = None
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str | None = None
    max_output_tokens: int | Literal["inf"] | None = None
    speed: float | None = None


# --------------------------------------------------------------------------- generation streams


@dataclass(slots=True)
class ItemAccount:
    """What arrived for one provider output item: the one count of it in vocalis.

    Written only by the provider's core as events arrive (audio ms, text, final status);
    the runtime, the mirror and the transcript sync read it and never count again. Text is
    kept as parts (no copy of the accumulated text per delta) and joined when read.
    """

    item_id: str
    received_ms: float = 0.0
    # Set once, when the item ended (`None` while it streams).
    status: MessageStatus | None = None
    text_chars: int = 0
    _parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The text (or audio transcript) received so far."""
        parts = self._parts
        if len(parts) > 1:
            parts[:] = ["".join(parts)]
        return parts[0] if parts else ""

    def add_text(self, delta: str) -> None:
        self._parts.append(delta)
        self.text_chars += len(delta)


@dataclass(slots=True)
class MessageGeneration:
    """One assistant message of a response: one output segment for the transport.

    `audio` yields int16 mono chunks at `Capabilities.output_sample_rate`; `text` yields
    transcript (or text) deltas. Both are closed by the provider when the item is done,
    cancelled, or the connection died. `account` is the provider's count of what arrived.
    """

    item_id: str
    response_id: str
    output_index: int
    modalities: tuple[Modality, ...]
    audio: Channel[np.ndarray] = field(default_factory=Channel)
    text: Channel[str] = field(default_factory=Channel)
    phase: str | None = None
    account: ItemAccount = field(default_factory=lambda: ItemAccount(""))

    @property
    def audio_received_ms(self) -> float:
        return self.account.received_ms

    @property
    def text_received(self) -> str:
        return self.account.text

    @property
    def status(self) -> MessageStatus | None:
        """Final once the item ended: completed, incomplete, cancelled or disconnected."""
        return self.account.status


@dataclass(slots=True)
class ToolCall:
    """A complete function call (arguments final).

    Streaming argument deltas go to `Generation.tool_call_deltas`.
    """

    item_id: str
    call_id: str
    name: str
    arguments: str
    response_id: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A chunk of a function call's arguments as it streams (before the `ToolCall` is final)."""

    item_id: str
    call_id: str
    name: str
    delta: str


@dataclass(frozen=True, slots=True)
class GenerationDone:
    response_id: str
    status: GenerationStatus
    reason: str | None = None
    error_code: str | None = None
    # Every output item id the provider announced for this response, in output order,
    # including items the runtime never pulled from `messages`.
    output_item_ids: tuple[str, ...] = ()
    usage: dict[str, Any] | None = None


@dataclass(slots=True)
class Generation:
    """One provider response.

    `messages` yields each `MessageGeneration` in playback order as soon as it is announced;
    `tool_calls` yields completed calls. Both close at the end of the response. `done`
    resolves exactly once with the final status — also when the socket dropped.
    `request_id` correlates with `generate_reply()`; server-initiated responses (VAD
    `create_response`) have `request_id=None`.
    """

    response_id: str
    messages: Channel[MessageGeneration] = field(default_factory=Channel)
    tool_calls: Channel[ToolCall] = field(default_factory=Channel)
    # Argument deltas of calls still streaming (optional to consume; closed with the response).
    tool_call_deltas: Channel[ToolCallDelta] = field(default_factory=Channel)
    done: asyncio.Future[GenerationDone] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    request_id: str | None = None
    # Output item ids announced so far (messages and function calls), in output order.
    announced_item_ids: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- session events


@dataclass(frozen=True, slots=True)
class GenerationStarted:
    generation: Generation


@dataclass(frozen=True, slots=True)
class InputSpeechStarted:
    item_id: str | None
    audio_start_ms: float


@dataclass(frozen=True, slots=True)
class InputSpeechStopped:
    item_id: str | None
    audio_end_ms: float


@dataclass(frozen=True, slots=True)
class InputAudioCommitted:
    item_id: str
    previous_item_id: str | None


@dataclass(frozen=True, slots=True)
class InputTranscription:
    item_id: str
    text: str
    final: bool


class ErrorKind(enum.Enum):
    """What a provider error means to the runtime, whatever the provider's own code.

    Each provider maps its codes to a kind in one table (OpenAI: `providers/openai/errors.py`);
    the runtime branches on kinds only, so a second provider never imitates OpenAI's strings.
    """

    # Another response is in progress; the request may succeed once it ended.
    BUSY = "busy"
    # The connection died before the operation completed (the provider reconnects itself).
    DISCONNECTED = "disconnected"
    # The provider did not acknowledge the operation in time.
    TIMEOUT = "timeout"
    # The item (or response) the operation names does not exist (any more).
    NOT_FOUND = "not_found"
    # The request itself is invalid (bad parameter, wrong state, empty input buffer).
    INVALID = "invalid"
    RATE_LIMITED = "rate_limited"
    # The provider session reached its maximum duration (the provider reconnects itself).
    EXPIRED = "expired"
    # Can never succeed on retry (authentication, quota): the session ends.
    FATAL = "fatal"
    # The session is closed, or not connected while an operation needs it.
    CLOSED = "closed"
    # The provider cannot be reached (connect or every reconnect attempt failed).
    UNAVAILABLE = "unavailable"
    # The provider failed on its side.
    SERVER = "server"
    # Refused for a reason no other kind describes.
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class ProviderError:
    """An error reported by (or about) the provider.

    `kind` is what the runtime acts on; `code` is informational — the provider's own error
    code when it sent one, else a short vocalis code for conditions seen on this side
    (`timeout`, `disconnected`, ...). Only `ErrorKind.FATAL` ends the session.
    """

    kind: ErrorKind
    message: str
    code: str | None = None
    # The client operation that failed, when known ("truncate", "delete", "response.create", ...).
    operation: str | None = None
    item_id: str | None = None

    @property
    def fatal(self) -> bool:
        return self.kind is ErrorKind.FATAL


@dataclass(frozen=True, slots=True)
class SessionReconnected:
    reason: str
    # Items replayed into the new provider session, in order.
    replayed_item_ids: tuple[str, ...] = ()
    # Set when the replayed history ends with caller input (a user message or a tool output)
    # that the lost session never started answering — e.g. the socket dropped after the
    # caller's turn was committed but before the provider created its response. It is the id
    # of that item (as in `replayed_item_ids`). The new session will not answer it on its own:
    # request a reply (`generate_reply`) if the caller should get one. `None` when the last
    # replayed item is an answer, or an answer had started (the interrupted `Generation`
    # then ended with status "disconnected").
    unanswered_item_id: str | None = None
    # Seconds (the provider's clock) from the drop to the new session, when known.
    outage_s: float | None = None


@dataclass(frozen=True, slots=True)
class SessionClosed:
    reason: str
    error: ProviderError | None = None


ProviderEvent: TypeAlias = (
    GenerationStarted
    | InputSpeechStarted
    | InputSpeechStopped
    | InputAudioCommitted
    | InputTranscription
    | ProviderError
    | SessionReconnected
    | SessionClosed
)


class OperationError(Exception):
    """A provider operation was rejected (the session itself stays usable unless FATAL).

    Branch on `kind`; `code` is the provider's own code (or a vocalis code) for messages.
    """

    def __init__(self, kind: ErrorKind, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.message = message

    @classmethod
    def from_error(cls, error: ProviderError) -> OperationError:
        return cls(error.kind, error.message, error.code)


T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True, slots=True)
class OpCompleted(Generic[T_co]):
    """A client operation succeeded; `value` is what it produced (an item id, a length...)."""

    op_id: str
    value: T_co


@dataclass(frozen=True, slots=True)
class OpFailed:
    """A client operation was rejected, timed out or lost with its connection."""

    op_id: str
    error: ProviderError


# The outcome of one operation, typed by the value it completes with.
OpResult: TypeAlias = OpCompleted[T_co] | OpFailed


# --------------------------------------------------------------------------- model and session


class RealtimeSession(abc.ABC):
    """One live connection to a realtime model (reconnects are internal to the session)."""

    @property
    @abc.abstractmethod
    def capabilities(self) -> Capabilities: ...

    @abc.abstractmethod
    def events(self) -> AsyncIterator[ProviderEvent]:
        """The session's event stream; ends after `SessionClosed`. Single consumer."""

    async def forward_events(self, callback: Callable[[ProviderEvent], None]) -> None:
        """Call `callback` with every event, in order, until after `SessionClosed` (instead
        of iterating `events()`; single consumer too). Why: a provider overrides this to call
        it inside its receive step, so a response's start reaches the runtime in the step of
        the audio read right after it (first audio to the sink with no loop turn, #17)."""
        async for event in self.events():
            callback(event)
            if isinstance(event, SessionClosed):
                return

    @abc.abstractmethod
    async def update_options(self, options: SessionOptions) -> None:
        """Apply instructions/tools/voice/VAD...; resolves when the provider confirmed."""

    # -- input audio (hot path: must not block, must not copy needlessly)
    @abc.abstractmethod
    def append_audio(self, samples: np.ndarray) -> None:
        """Queue int16 mono input audio at `capabilities.input_sample_rate`."""

    @abc.abstractmethod
    async def commit_audio(self) -> None: ...

    @abc.abstractmethod
    async def clear_audio(self) -> None: ...

    # -- responses
    @abc.abstractmethod
    async def generate_reply(
        self,
        *,
        instructions: str | None = None,
        tool_choice: str | None = None,
        output_modalities: Sequence[Modality] | None = None,
    ) -> Generation:
        """Request a response and return its `Generation` once the provider created it.

        Raises `OperationError` (e.g. `conversation_already_has_active_response`) instead of
        waiting forever; the runtime is responsible for only asking when idle.
        """

    @abc.abstractmethod
    async def cancel_response(self, response_id: str | None = None) -> None:
        """Cancel the active response; no error when nothing is active."""

    # -- history edits
    @abc.abstractmethod
    async def truncate(self, item_id: str, audio_end_ms: float) -> None:
        """Cut an assistant item's audio at the heard position.

        Clamps to the audio received for that item; an item with nothing received (or a
        position that rounds to 0) is deleted instead — never truncated at 0.
        """

    @abc.abstractmethod
    async def delete_item(self, item_id: str) -> None:
        """Delete by id; deleting an item the provider no longer has is not an error."""

    @abc.abstractmethod
    async def create_item(self, item: ConversationItem, previous_item_id: str | None = None) -> str:
        """Insert an item; returns the provider item id."""

    @abc.abstractmethod
    async def send_tool_output(
        self, call_id: str, output: str, *, item_id: str | None = None
    ) -> str:
        """Send a function_call_output (does not request a response); returns its item id.

        `item_id`: the id the output item gets, chosen by the caller (the runtime derives it
        from the call id), so sending it again — after a timeout, or by a history re-sync —
        never creates a second output; None lets the provider choose.
        """

    @abc.abstractmethod
    async def sync_history(self, items: Sequence[ConversationItem]) -> None:
        """Make the provider conversation equal `items` with a minimal delete/create diff."""

    def sync_history_nowait(self, items: Sequence[ConversationItem]) -> bool:
        """`sync_history(items)` done at once when it has nothing to send: True; False: not
        done, await `sync_history`. Why: the runtime re-syncs after every response, almost
        always with nothing to send; no task for it at a lockstep boundary (#17)."""
        return False

    @abc.abstractmethod
    async def aclose(self) -> None: ...


class RealtimeModel(abc.ABC):
    """Configuration + factory: one model object can open many sessions."""

    @property
    @abc.abstractmethod
    def capabilities(self) -> Capabilities: ...

    @abc.abstractmethod
    async def connect(self, options: SessionOptions) -> RealtimeSession:
        """Open a session with `options` applied (returns after the provider confirmed)."""
