"""Conversion between vocalis history items and OpenAI conversation items.

Why it matters: history sync and reconnect replay send the *heard* history back to the model.
Assistant turns go back as `output_text` (creating assistant audio is not supported, and the
text is what was heard); user turns as `input_text`; tool calls and outputs as their own item
types so the model still knows what it called.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from vocalis.conversation.items import (
    ConversationItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    MessageItem,
)

# OpenAI accepts client-chosen item ids of up to 32 characters.
_MAX_ID_LEN = 32
_ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")


def provider_item_id(local_id: str) -> str:
    """The id to request for a locally created item: the local id when the API accepts it.

    Deterministic, so the same local item always maps to the same provider id (replays after a
    reconnect then keep their ids whenever the server honours client ids).
    """
    if len(local_id) <= _MAX_ID_LEN and _ID_RE.match(local_id):
        return local_id
    return "vc_" + hashlib.sha1(local_id.encode()).hexdigest()[: _MAX_ID_LEN - 3]


def to_wire_item(item: ConversationItem, item_id: str) -> dict[str, Any]:
    """The `item` of a `conversation.item.create` for `item` (assistant audio becomes text)."""
    if isinstance(item, MessageItem):
        part = "output_text" if item.role == "assistant" else "input_text"
        return {
            "id": item_id,
            "type": "message",
            "role": item.role,
            "content": [{"type": part, "text": item.text}],
        }
    if isinstance(item, FunctionCallItem):
        return {
            "id": item_id,
            "type": "function_call",
            "call_id": item.call_id,
            "name": item.name,
            "arguments": item.arguments,
        }
    return {
        "id": item_id,
        "type": "function_call_output",
        "call_id": item.call_id,
        "output": item.output,
    }


def is_replayable(item: ConversationItem) -> bool:
    """Empty messages carry nothing heard (and the API rejects empty content)."""
    if isinstance(item, MessageItem):
        return bool(item.text.strip())
    return True


def replayable_history(items: list[ConversationItem]) -> list[ConversationItem]:
    """Items that can be re-created in a fresh session, in order.

    Drops empty messages and tool outputs whose call is not in the history (the API rejects a
    `function_call_output` with an unknown `call_id`).
    """
    out: list[ConversationItem] = []
    calls: set[str] = set()
    for item in items:
        if not is_replayable(item):
            continue
        if isinstance(item, FunctionCallItem):
            calls.add(item.call_id)
        elif isinstance(item, FunctionCallOutputItem) and item.call_id not in calls:
            continue
        out.append(item)
    return out
