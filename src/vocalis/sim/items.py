"""Validation of client-supplied items (``conversation.item.create``) into :class:`Item`.

Kept apart from :mod:`vocalis.sim.conversation` because it is about the wire shape of one
event, while the conversation is about order and item operations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vocalis.audio.codec import b64decode_bytes
from vocalis.sim import errors
from vocalis.sim.conversation import Item


def decode_audio(data: str) -> bytes:
    """Strict base64 audio of a client event, refused the way the real API refuses it.

    One place for both wire paths that carry audio (``input_audio_buffer.append`` and an
    ``input_audio`` content part), so they accept and reject exactly the same text.
    """
    try:
        return b64decode_bytes(data)
    except ValueError:
        raise errors.audio_not_base64() from None


_ITEM_TYPES = ("message", "function_call", "function_call_output", "mcp_approval_response")
_ROLES = ("user", "assistant", "system")
_STATUSES = ("completed", "incomplete", "in_progress")
_PART_TYPES_BY_ROLE = {
    "user": ("input_text", "input_audio", "input_image"),
    "system": ("input_text",),
    "assistant": ("output_text", "output_audio", "text"),
}
_ITEM_KEYS = (
    "id",
    "object",
    "type",
    "status",
    "role",
    "content",
    "call_id",
    "name",
    "arguments",
    "output",
    "phase",
    "approval_request_id",
    "approve",
    "reason",
)


def _str_field(item: dict[str, Any], key: str, *, required: bool) -> str | None:
    value = item.get(key)
    if value is None:
        if required:
            raise errors.missing_parameter(f"item.{key}")
        return None
    if not isinstance(value, str):
        raise errors.invalid_type(f"item.{key}", "a string", value)
    return value


def _approval_response(raw: dict[str, Any], item_id: str, known: frozenset[str]) -> Item:
    """The client's answer to an ``mcp_approval_request`` item."""
    request_id = _str_field(raw, "approval_request_id", required=True)
    assert request_id is not None
    if request_id not in known:
        # Unverified text, in the style of the unknown tool-call error.
        raise errors.RealtimeError(
            "invalid_value",
            f"MCP approval request ID '{request_id}' not found in conversation.",
            param="item.approval_request_id",
        )
    approve = raw.get("approve")
    if approve is None:
        raise errors.missing_parameter("item.approve")
    if not isinstance(approve, bool):
        raise errors.invalid_type("item.approve", "a boolean", approve)
    return Item(
        id=item_id,
        type="mcp_approval_response",
        approval_request_id=request_id,
        approve=approve,
        reason=_str_field(raw, "reason", required=False),
    )


def _item_type(raw: dict[str, Any]) -> str:
    for key in raw:
        if key not in _ITEM_KEYS:
            raise errors.unknown_parameter(f"item.{key}")
    item_type = raw.get("type")
    if item_type is None:
        # The API infers a message when the type is omitted but a role is present.
        if raw.get("role") is None:
            raise errors.missing_parameter("item.type")
        return "message"
    if item_type not in _ITEM_TYPES:
        raise errors.invalid_value("item.type", item_type, _ITEM_TYPES)
    return str(item_type)


def _status(raw: dict[str, Any]) -> str:
    status = raw.get("status") or "completed"
    if status not in _STATUSES:
        raise errors.invalid_value("item.status", status, _STATUSES)
    return str(status)


def parse_client_item(
    raw: Any,
    *,
    new_id: Callable[[], str],
    input_bytes_per_ms: float,
    known_call_ids: set[str],
    known_approval_ids: frozenset[str] = frozenset(),
) -> Item:
    """Build an :class:`Item` from ``conversation.item.create.item`` or raise the API's error.

    ``known_call_ids`` are the call ids of function calls in the conversation; an output for
    another id is refused as the real API does (likewise approvals for unknown requests).
    """
    if raw is None:
        raise errors.missing_parameter("item")
    if not isinstance(raw, dict):
        raise errors.invalid_type("item", "an object", raw)
    item_type = _item_type(raw)
    item_id = _str_field(raw, "id", required=False) or new_id()
    if len(item_id) > 32:
        raise errors.string_too_long("item.id", 32, len(item_id))
    if item_type == "function_call":
        return Item(
            id=item_id,
            type="function_call",
            status=_status(raw),
            call_id=_str_field(raw, "call_id", required=False) or new_id().replace("item", "call"),
            name=_str_field(raw, "name", required=True),
            arguments=_str_field(raw, "arguments", required=False) or "",
            phase=_str_field(raw, "phase", required=False),
        )
    if item_type == "mcp_approval_response":
        return _approval_response(raw, item_id, known_approval_ids)
    if item_type == "function_call_output":
        call_id = _str_field(raw, "call_id", required=True)
        assert call_id is not None
        if call_id not in known_call_ids:
            raise errors.tool_call_unknown(call_id)
        output = _str_field(raw, "output", required=True)
        return Item(id=item_id, type="function_call_output", call_id=call_id, output=output)
    return _message(raw, item_id, input_bytes_per_ms)


def _message(raw: dict[str, Any], item_id: str, input_bytes_per_ms: float) -> Item:
    role = raw.get("role")
    if role is None:
        raise errors.missing_parameter("item.role")
    if role not in _ROLES:
        raise errors.invalid_value("item.role", role, _ROLES)
    content_raw = raw.get("content")
    if content_raw is None:
        raise errors.missing_parameter("item.content")
    if not isinstance(content_raw, list):
        raise errors.invalid_type("item.content", "an array", content_raw)
    phase = _str_field(raw, "phase", required=False)
    item = Item(id=item_id, type="message", role=role, status=_status(raw), phase=phase)
    item.bytes_per_ms = input_bytes_per_ms
    for index, part in enumerate(content_raw):
        _add_part(item, index, part)
    return item


def _add_part(item: Item, index: int, part: Any) -> None:
    """One content part of a client message (its audio becomes the item's, for part 0)."""
    param = f"item.content[{index}]"
    if not isinstance(part, dict):
        raise errors.invalid_type(param, "an object", part)
    part_type = part.get("type")
    assert item.role is not None
    if part_type == "output_audio" and item.role == "assistant":
        raise errors.assistant_audio_not_supported()
    allowed = _PART_TYPES_BY_ROLE[item.role]
    if part_type not in allowed:
        raise errors.invalid_value(f"{param}.type", part_type, allowed)
    if part_type in ("input_text", "output_text", "text"):
        text = part.get("text")
        if text is None:
            raise errors.missing_parameter(f"{param}.text")
        if not isinstance(text, str):
            raise errors.invalid_type(f"{param}.text", "a string", text)
        wire_type = "output_text" if part_type == "text" else part_type
        item.content.append({"type": wire_type, "text": text})
    elif part_type == "input_audio":
        audio = part.get("audio")
        if audio is not None:
            if not isinstance(audio, str):
                raise errors.invalid_type(f"{param}.audio", "a string", audio)
            decoded = decode_audio(audio)
            if index == 0:
                item.set_audio(decoded)
        item.content.append({"type": "input_audio", "transcript": part.get("transcript")})
    else:  # input_image
        item.content.append({k: v for k, v in part.items() if k in ("type", "detail")})
