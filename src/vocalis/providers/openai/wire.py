"""The OpenAI Realtime GA wire: typed shapes of the events the core handles, and builders.

The TypedDicts document (and let mypy check) the fields the core reads; they cost nothing at
run time — a server event is still the decoded dict. Fields are `NotRequired` where the API,
its clones or the beta aliases may leave them out; the core validates what it uses (a
malformed event is counted and skipped, never a crash).

The builders are the one shape of each client event on the wire (a truncate and its retry at
the server's length, a delete and a sub-1 ms cut's delete, ...).
"""

from __future__ import annotations

import sys
from typing import Any, Literal, NotRequired, TypedDict

# --------------------------------------------------------------------------- server events


class ErrorBody(TypedDict, total=False):
    type: str
    code: str | None
    message: str
    param: str | None
    event_id: str | None


class ErrorEvent(TypedDict):
    type: Literal["error"]
    error: NotRequired[ErrorBody]


class WireItem(TypedDict, total=False):
    id: str
    type: str
    role: str
    status: str
    phase: str
    call_id: str
    name: str
    arguments: str
    output: str
    content: list[dict[str, Any]]


class ResponseBody(TypedDict, total=False):
    id: str
    status: str
    status_details: dict[str, Any] | None
    output: list[WireItem]
    output_modalities: list[str]
    metadata: dict[str, Any] | None
    usage: dict[str, Any] | None


class ResponseEvent(TypedDict):
    """`response.created` / `response.done`."""

    type: str
    response: ResponseBody


class OutputItemEvent(TypedDict):
    """`response.output_item.added` / `.done`."""

    type: str
    response_id: NotRequired[str]
    output_index: NotRequired[int]
    item: WireItem


class ContentEvent(TypedDict):
    """Content events of one output item (audio/text deltas and dones, content parts)."""

    type: str
    item_id: str
    response_id: NotRequired[str]
    output_index: NotRequired[int]
    content_index: NotRequired[int]
    delta: NotRequired[str]
    transcript: NotRequired[str]
    text: NotRequired[str]
    part: NotRequired[dict[str, Any]]


class ArgumentsEvent(TypedDict):
    """`response.function_call_arguments.delta` / `.done`."""

    type: str
    item_id: str
    response_id: NotRequired[str]
    output_index: NotRequired[int]
    call_id: NotRequired[str]
    name: NotRequired[str]
    delta: NotRequired[str]
    arguments: NotRequired[str]


class ItemEvent(TypedDict):
    """`conversation.item.added` / `.done` (also the beta `.created`)."""

    type: str
    previous_item_id: NotRequired[str | None]
    item: WireItem


class ItemRefEvent(TypedDict):
    """`conversation.item.truncated` / `.deleted`, `input_audio_buffer.*`, transcription."""

    type: str
    item_id: str
    previous_item_id: NotRequired[str | None]
    audio_start_ms: NotRequired[float]
    audio_end_ms: NotRequired[float]
    delta: NotRequired[str]
    transcript: NotRequired[str]
    error: NotRequired[dict[str, Any]]


class SessionEvent(TypedDict):
    """`session.created` / `session.updated`."""

    type: str
    session: NotRequired[dict[str, Any]]


def optional_str(value: object) -> str | None:
    """An optional wire field as text (ids arrive as strings, numbers or null)."""
    return str(value) if value is not None else None


# Fields whose text the client keeps for the whole call (ids, and the item's kind).
_EVENT_IDS = ("item_id", "response_id", "previous_item_id", "call_id")
_ITEM_KEPT = ("id", "type", "role", "status", "call_id", "name")


def intern_kept_fields(event: dict[str, Any]) -> None:
    """Make every copy of an id (and of an item's type/role/status) one shared string.

    Why: the JSON decoder builds a new string for every value of every event, and the client
    keeps ids from many of them for the whole call (the mirror, the item accounts, aliases,
    the history, the turn metrics): without this one item id is held five times over, and
    "message"/"assistant"/"completed" once per item. `sys.intern` strings are freed with
    their last user, so this bounds nothing away — it only removes the duplicates.
    """
    for key in _EVENT_IDS:
        value = event.get(key)
        if type(value) is str:
            event[key] = sys.intern(value)
    item = event.get("item")
    if type(item) is dict:
        for key in _ITEM_KEPT:
            value = item.get(key)
            if type(value) is str:
                item[key] = sys.intern(value)
    response = event.get("response")
    if type(response) is dict and type(response.get("id")) is str:
        response["id"] = sys.intern(response["id"])


# --------------------------------------------------------------------------- client events


def truncate_event(event_id: str, item_id: str, audio_end_ms: int) -> dict[str, Any]:
    """The one shape of a truncate on the wire (first cut and the retry at the server's length)."""
    return {
        "type": "conversation.item.truncate",
        "event_id": event_id,
        "item_id": item_id,
        "content_index": 0,
        "audio_end_ms": audio_end_ms,
    }


def delete_event(event_id: str, item_id: str) -> dict[str, Any]:
    """The one shape of a delete on the wire (a delete, or a retried cut at 0 ms)."""
    return {"type": "conversation.item.delete", "event_id": event_id, "item_id": item_id}


def retrieve_event(event_id: str, item_id: str) -> dict[str, Any]:
    return {"type": "conversation.item.retrieve", "event_id": event_id, "item_id": item_id}


def session_update_event(event_id: str, session: dict[str, Any]) -> dict[str, Any]:
    return {"type": "session.update", "event_id": event_id, "session": session}


def response_create_event(event_id: str, response: dict[str, Any] | None) -> dict[str, Any]:
    """`response.create` tagged with `metadata.client_event_id` (correlates `.created`)."""
    body = dict(response or {})
    metadata = dict(body.get("metadata") or {})
    metadata["client_event_id"] = event_id
    body["metadata"] = metadata
    return {"type": "response.create", "event_id": event_id, "response": body}


def response_cancel_event(event_id: str, response_id: str | None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "response.cancel", "event_id": event_id}
    if response_id is not None:
        event["response_id"] = response_id
    return event


def item_create_event(
    event_id: str, wire_item: dict[str, Any], previous_item_id: str | None
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "conversation.item.create",
        "event_id": event_id,
        "item": wire_item,
    }
    if previous_item_id is not None:
        event["previous_item_id"] = previous_item_id
    return event


def buffer_event(event_id: str, kind: Literal["commit", "clear"]) -> dict[str, Any]:
    return {"type": f"input_audio_buffer.{kind}", "event_id": event_id}
