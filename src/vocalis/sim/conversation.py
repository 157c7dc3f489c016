"""The server-side conversation: ordered items, their audio, and the item operations.

Sans-I/O: methods take validated arguments, mutate the item list and either return what the
caller needs to build the reply event or raise :class:`RealtimeError` with the real API's text.

Choices where the real API is not documented (see ``docs/sim-server.md``):

* Truncation keeps the transcript words whose audio lies *entirely* before the cut
  (``word.end_ms <= audio_end_ms``); the real server is documented to drop the transcript,
  but a word-boundary prefix is what the caller heard, and what vocalis' history expects.
* The item's audio length used by truncate validation is ``floor(bytes / bytes_per_ms)``,
  optionally rounded down to ``granularity_ms`` (the real server appears to count in 50 ms steps).
* A duplicate client-supplied item id is refused (``item_duplicate_id``); gpt-realtime-1.5
  silently appends such an item.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from vocalis.audio.codec import b64encode_bytes
from vocalis.sim import errors


@dataclass(frozen=True, slots=True)
class WordSpan:
    """One transcript token (with its leading space) and where its audio lies in the item (ms)."""

    text: str
    start_ms: float
    end_ms: float


@dataclass(eq=False, slots=True, weakref_slot=True)
class Item:
    """One conversation item as the server keeps it.

    ``content`` holds the wire-shaped content parts *without* audio; the audio of content part 0
    (user input audio or assistant output audio) is ``audio``: raw bytes in the item's audio
    format (``bytes_per_ms`` = 48 for PCM16 24 kHz, 8 for G.711), never base64.

    Memory: the audio is held once, as the first ``audio_nbytes`` of ``audio_source``. An
    assistant message shares its source with the cached speech it streams (every session saying
    a scripted line points at the same bytes; its audio grows and truncation shrinks it by
    moving ``audio_nbytes``), so only caller audio costs memory per session.
    """

    id: str
    type: str
    role: str | None = None
    status: str = "completed"
    content: list[dict[str, Any]] = field(default_factory=list)
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None
    phase: str | None = None
    audio_source: bytes = b""
    audio_nbytes: int = 0
    bytes_per_ms: float = 48.0
    words: list[WordSpan] = field(default_factory=list)
    truncated_at_ms: int | None = None
    response_id: str | None = None
    # MCP items (mcp_list_tools, mcp_call, mcp_approval_request/response)
    server_label: str | None = None
    tools: list[dict[str, Any]] | None = None
    approval_request_id: str | None = None
    approve: bool | None = None
    reason: str | None = None
    error: dict[str, Any] | None = None

    @property
    def audio(self) -> memoryview:
        """The item's audio bytes (a read-only view; no copy)."""
        return memoryview(self.audio_source)[: self.audio_nbytes]

    def set_audio(self, data: bytes) -> None:
        """The item's audio is all of ``data`` (kept by reference)."""
        self.audio_source = data
        self.audio_nbytes = len(data)

    def share_audio(self, source: bytes, nbytes: int) -> None:
        """The item's audio is the first ``nbytes`` of ``source`` (streamed speech grows)."""
        self.audio_source = source
        self.audio_nbytes = nbytes

    @property
    def audio_ms(self) -> float:
        """Duration of the item's audio in ms (0.0 without audio)."""
        return self.audio_nbytes / self.bytes_per_ms

    @property
    def has_output_audio(self) -> bool:
        return any(part.get("type") == "output_audio" for part in self.content)

    @property
    def text(self) -> str | None:
        """The message's text or transcript (content parts joined); ``None`` when it has none.

        For function calls this is the arguments string, for call outputs the output.
        """
        if self.type == "function_call":
            return self.arguments
        if self.type == "function_call_output":
            return self.output
        pieces = [
            value
            for part in self.content
            for key in ("text", "transcript")
            if isinstance(value := part.get(key), str)
        ]
        return "".join(pieces) if pieces else None

    def _mcp_wire(self) -> dict[str, Any]:
        """MCP items carry no ``object``/``status`` (the SDK's Realtime MCP item types)."""
        wire: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.type == "mcp_approval_response":
            wire["approval_request_id"] = self.approval_request_id
            wire["approve"] = self.approve
            wire["reason"] = self.reason
            return wire
        wire["server_label"] = self.server_label
        if self.type == "mcp_list_tools":
            wire["tools"] = list(self.tools or [])
            return wire
        wire["name"] = self.name
        wire["arguments"] = self.arguments or ""
        if self.type == "mcp_call":
            wire["approval_request_id"] = self.approval_request_id
            wire["output"] = self.output
            wire["error"] = self.error
        return wire

    def to_wire(self, *, include_audio: bool = False) -> dict[str, Any]:
        """The item as the real API shows it (no audio unless ``include_audio``)."""
        if self.type.startswith("mcp_"):
            return self._mcp_wire()
        wire: dict[str, Any] = {"id": self.id, "object": "realtime.item", "type": self.type}
        if self.type == "message":
            wire["status"] = self.status
            wire["role"] = self.role
            content = [dict(part) for part in self.content]
            if include_audio and content and content[0]["type"] in ("input_audio", "output_audio"):
                content[0]["audio"] = b64encode_bytes(self.audio)
            wire["content"] = content
        elif self.type == "function_call":
            wire["status"] = self.status
            wire["call_id"] = self.call_id
            wire["name"] = self.name
            wire["arguments"] = self.arguments
        elif self.type == "function_call_output":
            wire["call_id"] = self.call_id
            wire["output"] = self.output
        if self.phase is not None:
            wire["phase"] = self.phase
        return wire

    def summary(self) -> dict[str, Any]:
        """A compact, audio-free view for logs and assertions."""
        return {
            "id": self.id,
            "type": self.type,
            "role": self.role,
            "status": self.status,
            "text": self.text,
            "audio_ms": round(self.audio_ms, 1),
            "phase": self.phase,
            "call_id": self.call_id,
            "name": self.name,
            "truncated_at_ms": self.truncated_at_ms,
        }


ROOT = "root"


class Conversation:
    """Ordered items with id lookup. The order defines what the model "sees"."""

    def __init__(self, *, truncate_granularity_ms: int = 1) -> None:
        self.items: list[Item] = []
        self._by_id: dict[str, Item] = {}
        self.truncate_granularity_ms = max(1, truncate_granularity_ms)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._by_id

    def get(self, item_id: str) -> Item | None:
        return self._by_id.get(item_id)

    def previous_id(self, item_id: str) -> str | None:
        """Id of the item before ``item_id`` (``None`` at the root)."""
        for index, item in enumerate(self.items):
            if item.id == item_id:
                return self.items[index - 1].id if index > 0 else None
        raise KeyError(item_id)

    def check_insert(self, item_id: str, previous_item_id: str | None) -> None:
        """Raise the error an insert would raise, without inserting."""
        if item_id in self._by_id:
            raise errors.duplicate_item_id(item_id)
        if previous_item_id not in (None, "", ROOT) and previous_item_id not in self._by_id:
            raise errors.previous_item_unknown(previous_item_id)

    def insert(self, item: Item, previous_item_id: str | None = None) -> str | None:
        """Insert ``item`` after ``previous_item_id`` (``None``/``""`` = append, ``"root"`` =
        first) and return the id of the item now before it (``None`` at the root)."""
        self.check_insert(item.id, previous_item_id)
        if previous_item_id in (None, ""):
            index = len(self.items)
        elif previous_item_id == ROOT:
            index = 0
        else:
            index = next(i for i, it in enumerate(self.items) if it.id == previous_item_id) + 1
        self.items.insert(index, item)
        self._by_id[item.id] = item
        return self.items[index - 1].id if index > 0 else None

    def delete(self, item_id: str) -> Item:
        item = self._by_id.pop(item_id, None)
        if item is None:
            raise errors.item_delete_unknown(item_id)
        self.items.remove(item)
        return item

    def retrieve(self, item_id: str) -> Item:
        item = self._by_id.get(item_id)
        if item is None:
            raise errors.item_retrieve_unknown(item_id)
        return item

    def reported_audio_ms(self, item: Item) -> int:
        """The item's audio length as the server reports it in truncate errors."""
        ms = math.floor(item.audio_ms + 1e-9)
        return ms - ms % self.truncate_granularity_ms

    def truncate(self, item_id: str, content_index: int, audio_end_ms: int) -> Item:
        """Cut an assistant audio item at ``audio_end_ms`` of its own audio timeline.

        Allowed while the item's response is still in flight: the check is against the audio
        generated so far, and the response stops generating audio for a truncated item.
        """
        item = self._by_id.get(item_id)
        if item is None:
            raise errors.item_truncate_unknown(item_id)
        if audio_end_ms < 0:
            raise errors.out_of_range("audio_end_ms", audio_end_ms, 0, below=True)
        if item.role != "assistant" or not item.has_output_audio or not item.audio_nbytes:
            raise errors.truncate_not_audio()
        if content_index != 0:
            raise errors.truncate_content_index(content_index)
        reported = self.reported_audio_ms(item)
        if audio_end_ms > reported:
            raise errors.truncate_past_end(reported, audio_end_ms)
        keep_bytes = int(audio_end_ms * item.bytes_per_ms)
        keep_bytes -= keep_bytes % (2 if item.bytes_per_ms == 48.0 else 1)
        item.audio_nbytes = min(item.audio_nbytes, keep_bytes)
        item.words = [w for w in item.words if w.end_ms <= audio_end_ms]
        transcript = "".join(w.text for w in item.words).strip()
        for part in item.content:
            if part.get("type") == "output_audio":
                part["transcript"] = transcript
        item.truncated_at_ms = audio_end_ms
        return item
