"""Session events: typed dataclasses, delivered to callbacks and async iterators.

Apps subscribe by event *class* (`session.on(ConversationItemAdded, cb)`), so a typo is a
type error, not a silently dead listener. Callbacks run synchronously in the session's task —
they must be quick; a raising callback is logged and never breaks the session. `stream()`
gives an unbounded async iterator for apps that prefer `async for` (e.g. forwarding to a UI).
"""

from __future__ import annotations

import logging
import sys
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, TypeAlias, TypeVar

from vocalis.conversation.items import ConversationItem
from vocalis.providers.base import GenerationStatus
from vocalis.runtime.speech import SpeechKind
from vocalis.utils.channel import Channel

log = logging.getLogger(__name__)

AgentState = Literal["initializing", "listening", "thinking", "speaking", "closed"]
UserState = Literal["listening", "speaking"]
# What the heard ledger told the provider to do with an assistant message after its playout.
HistoryOp = Literal["none", "truncate", "delete", "replace_text"]
# Who cut the agent's speech: the provider's VAD, vocalis' own VAD, a typed message, or the
# app (`AgentSession.interrupt()`).
InterruptSource = Literal["server_vad", "local_vad", "text", "api"]
# Who reports an error: the provider, the stall watchdog, or the runtime (a task that failed).
ErrorSource = Literal["provider", "watchdog", "runtime"]


@dataclass(frozen=True, slots=True)
class AgentStateChanged:
    old: AgentState
    new: AgentState
    at: float


@dataclass(frozen=True, slots=True)
class UserStateChanged:
    old: UserState
    new: UserState
    at: float


@dataclass(frozen=True, slots=True)
class ConversationItemAdded:
    """An item entered the history; assistant messages carry the *heard* text."""

    item: ConversationItem


@dataclass(frozen=True, slots=True)
class UserTranscript:
    item_id: str
    text: str
    final: bool


@dataclass(frozen=True, slots=True)
class ToolCallStarted:
    call_id: str
    name: str
    arguments: str
    # The response that made the call (observers nest the call under it).
    response_id: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCallFinished:
    call_id: str
    name: str
    output: str
    is_error: bool
    duration_s: float
    response_id: str | None = None


@dataclass(frozen=True, slots=True)
class ResponseStarted:
    """A provider response began; its `TurnMetrics` follow when it settled.

    `origin` says who asked for it: "server" (the provider's turn detection), "reply", "say"
    or "tool_followup". Observers (tracing) open the response's span here so that the tool
    calls and messages it makes can nest under it while they happen.
    """

    response_id: str
    origin: SpeechKind
    at: float


@dataclass(frozen=True, slots=True)
class ProviderConnected:
    """The provider session is open; `connect_s` is how long connecting took (clock s)."""

    provider: str
    connect_s: float
    at: float


@dataclass(frozen=True, slots=True)
class ProviderReconnected:
    """The provider dropped and reconnected by itself; the heard history is replayed.

    `outage_s` (when the provider knows it) is the time from the drop to the new session.
    """

    reason: str
    outage_s: float | None
    replayed_items: int
    at: float


@dataclass(frozen=True, slots=True)
class Interrupted:
    """Agent speech was cut; `source` says who cut it (see `InterruptSource`)."""

    source: InterruptSource
    response_ids: tuple[str, ...]
    at: float


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """Something failed; `recoverable=False` means the session is closing."""

    message: str
    code: str | None = None
    recoverable: bool = True
    operation: str | None = None
    source: ErrorSource = "provider"
    # The response concerned, when there is one (the stall watchdog's reports).
    response_id: str | None = None


@dataclass(frozen=True, slots=True)
class MessageMetrics:
    item_id: str
    generated_ms: float
    played_ms: float
    playout: str
    # What the model generated for this message (a never-played message is deleted from the
    # history, so this is the only place its text survives, e.g. for the CLI's timeline).
    generated_text: str = ""
    # Clock times: the message began arriving, its first frame played, its playout ended.
    pulled_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    # The edit the heard ledger sends the provider for it (cut to what was heard, or delete).
    history_op: HistoryOp = "none"


@dataclass(frozen=True, slots=True)
class TurnMetrics:
    """Latency and audio accounting of one response (clock seconds, durations in ms).

    `voice_to_voice_ms` is the latency users feel: end of the caller's speech to the first
    *non-silent* agent audio actually played. `time_to_first_audio_ms` is the provider's part:
    end of speech (or the request) to the first audio byte received.
    """

    response_id: str
    origin: SpeechKind
    user_speech_end_at: float | None = None
    requested_at: float | None = None
    created_at: float | None = None
    first_audio_received_at: float | None = None
    first_audio_played_at: float | None = None
    first_voice_played_at: float | None = None
    voice_to_voice_ms: float | None = None
    time_to_first_audio_ms: float | None = None
    playback_latency_ms: float | None = None
    interrupted: bool = False
    status: GenerationStatus | None = None
    messages: tuple[MessageMetrics, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return SavedTurn.of(self).to_json()


class SavedMessage(NamedTuple):
    """What the saved history keeps of a `MessageMetrics`."""

    item_id: str
    generated_ms: float
    played_ms: float
    playout: str
    generated_text: str


class SavedTurn(NamedTuple):
    """What the saved history keeps of a `TurnMetrics`: the fields of its JSON, no more.

    Why a tuple: a call keeps one per response for as long as it lasts, and the event (14
    fields, nine of them floats, plus ten per message) cost about 650 bytes per response
    where this costs about 370 — ~130 bytes per history item of a long call (#14).
    """

    response_id: str
    origin: str
    voice_to_voice_ms: float | None
    time_to_first_audio_ms: float | None
    playback_latency_ms: float | None
    interrupted: bool
    status: str | None
    messages: tuple[SavedMessage, ...]

    @classmethod
    def of(cls, event: TurnMetrics) -> SavedTurn:
        return cls(
            event.response_id,
            event.origin,
            event.voice_to_voice_ms,
            event.time_to_first_audio_ms,
            event.playback_latency_ms,
            event.interrupted,
            event.status,
            tuple(
                SavedMessage(m.item_id, m.generated_ms, m.played_ms, m.playout, m.generated_text)
                for m in event.messages
            ),
        )

    def to_json(self) -> dict[str, Any]:
        def r(value: float | None) -> float | None:
            return None if value is None else round(value, 1)

        return {
            "response_id": self.response_id,
            "origin": self.origin,
            "voice_to_voice_ms": r(self.voice_to_voice_ms),
            "time_to_first_audio_ms": r(self.time_to_first_audio_ms),
            "playback_latency_ms": r(self.playback_latency_ms),
            "interrupted": self.interrupted,
            "status": self.status,
            "messages": [
                {
                    "item_id": m.item_id,
                    "generated_ms": round(m.generated_ms, 1),
                    "played_ms": round(m.played_ms, 1),
                    "playout": m.playout,
                    "generated_text": m.generated_text,
                }
                for m in self.messages
            ],
        }


@dataclass(frozen=True, slots=True)
class SessionClosedEvent:
    """The last event of a session: why it ended (`AgentSession.end`, as one phrase)."""

    reason: str
    # The error code when a fatal error ended the session (`item_budget`, ...), else None.
    code: str | None = None


SessionEvent: TypeAlias = (
    AgentStateChanged
    | UserStateChanged
    | ConversationItemAdded
    | UserTranscript
    | ToolCallStarted
    | ToolCallFinished
    | ResponseStarted
    | ProviderConnected
    | ProviderReconnected
    | Interrupted
    | ErrorEvent
    | TurnMetrics
    | SessionClosedEvent
)

E = TypeVar("E", bound=SessionEvent)


class RecentEvents:
    """The most recent session events, in order, bounded by count and by bytes.

    Why bytes: a long call emits events for as long as it lasts (~130 per minute of
    conversation), and a count bound alone let every call of a worker hold thousands of
    them — the largest share of a 10-minute call's growth after its history (#14). The size
    is an estimate of what an event keeps alive (the object and its own strings and numbers;
    an item or metrics it points to are kept by the history anyway). The oldest events go
    first; per-turn metrics never depend on this log (the session keeps them apart).
    """

    def __init__(self, max_events: int | None, max_bytes: int | None) -> None:
        self._events: deque[tuple[SessionEvent, int]] = deque()
        self._max_events = max_events
        self._max_bytes = max_bytes
        self.bytes = 0

    def append(self, event: SessionEvent) -> None:
        size = event_bytes(event)
        events = self._events
        events.append((event, size))
        self.bytes += size
        while (self._max_events is not None and len(events) > self._max_events) or (
            self._max_bytes is not None and self.bytes > self._max_bytes and len(events) > 1
        ):
            self.bytes -= events.popleft()[1]

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[SessionEvent]:
        return (event for event, _ in self._events)


# The log's own cost per event: the (event, size) pair and its slot in the deque.
_ENTRY_BYTES = 72


def event_bytes(event: SessionEvent) -> int:
    """Estimated bytes that logging `event` keeps alive.

    The object, its own strings and numbers, and the log's entry for it; an item or metrics
    it points to are kept by the history anyway.
    """
    size = _ENTRY_BYTES + sys.getsizeof(event)
    for name in type(event).__slots__:
        value = getattr(event, name)
        if isinstance(value, str | float | tuple):
            size += sys.getsizeof(value)
    return size


class EventEmitter:
    """Typed fan-out of session events to callbacks and streams."""

    def __init__(self, log_limit: int | None = 4096, log_bytes: int | None = None) -> None:
        self._callbacks: dict[type[Any], list[Callable[[Any], None]]] = {}
        self._streams: list[Channel[SessionEvent]] = []
        # The most recent events, in order (tests and reports read it). Bounded so that a
        # long call does not grow without end; subscribers (`on`, `stream`) see every event
        # regardless.
        self.log = RecentEvents(log_limit, log_bytes)

    def on(self, kind: type[E], callback: Callable[[E], None]) -> Callable[[], None]:
        """Subscribe; returns a function that unsubscribes."""
        callbacks = self._callbacks.setdefault(kind, [])
        callbacks.append(callback)

        def off() -> None:
            if callback in callbacks:
                callbacks.remove(callback)

        return off

    def stream(self) -> AsyncIterator[SessionEvent]:
        """All events from now on; ends when the session closes."""
        channel: Channel[SessionEvent] = Channel()
        self._streams.append(channel)
        return aiter(channel)

    def emit(self, event: SessionEvent) -> None:
        self.log.append(event)
        for callback in list(self._callbacks.get(type(event), ())):
            try:
                callback(event)
            except Exception:
                log.exception("event callback for %s failed", type(event).__name__)
        for channel in self._streams:
            channel.send(event)

    def close(self) -> None:
        for channel in self._streams:
            channel.close()
        self._streams.clear()
