"""Provider-neutral conversation items: the local history.

The history is the product's proof: each assistant message carries the provider item id, the
text whose audio was actually *played*, whether it was interrupted and how many ms were heard.
Items serialize to plain JSON (`to_json`) in the shape the CLI writes (`{"items": [...]}`).

Every item's JSON carries the same core keys — `id, type, role, text, interrupted, played_ms` —
and tool items (`function_call`, `function_call_output`) also `name, arguments, output`, so a
script can read any item without checking its type first. What does not apply is neutral
(`text` "", `interrupted` false, `played_ms` null). A call's `output` and an output's
`arguments` live on the other item of the pair; `history_to_json` joins them by `call_id`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

Role = Literal["user", "assistant", "system"]
# Who ended a message before all of its audio existed, when it was not the caller: the
# provider ("provider": `response.done` incomplete or failed, or a stall the watchdog had to
# cancel) or the network ("connection": the socket dropped). A message the caller (or the app)
# cut is `interrupted` instead; the two never go together.
CutBy = Literal["provider", "connection"]


@dataclass(slots=True)
class MessageItem:
    id: str
    role: Role
    text: str = ""
    # The caller (or the app's `interrupt()`) cut it; see `cut_by` for the other causes.
    interrupted: bool = False
    cut_by: CutBy | None = None
    # Heard audio for assistant messages (None for items without audio, e.g. typed text).
    played_ms: float | None = None
    # Audio the provider generated for this item (received bytes), for metrics and clamping.
    generated_ms: float | None = None
    # Full text the provider generated; differs from `text` when interrupted.
    generated_text: str | None = None
    response_id: str | None = None
    created_at: float = 0.0
    # More keys for the item's JSON (None: none — no empty dict per item of a long call).
    extra: dict[str, Any] | None = None

    @property
    def type(self) -> Literal["message"]:
        return "message"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "type": "message",
            "role": self.role,
            "text": self.text,
            "interrupted": self.interrupted,
            "played_ms": None if self.played_ms is None else round(self.played_ms, 1),
        }
        if self.cut_by is not None:
            data["cut_by"] = self.cut_by
        if self.generated_ms is not None:
            data["generated_ms"] = round(self.generated_ms, 1)
        if self.generated_text is not None and self.generated_text != self.text:
            data["generated_text"] = self.generated_text
        if self.response_id is not None:
            data["response_id"] = self.response_id
        if self.extra:
            data.update(self.extra)
        return data


@dataclass(slots=True)
class FunctionCallItem:
    id: str
    call_id: str
    name: str
    arguments: str
    response_id: str | None = None
    created_at: float = 0.0

    @property
    def type(self) -> Literal["function_call"]:
        return "function_call"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function_call",
            "role": "assistant",
            "text": "",
            "interrupted": False,
            "played_ms": None,
            "call_id": self.call_id,
            "name": self.name,
            "arguments": self.arguments,
            # Known only to the output item: `history_to_json` fills it in.
            "output": None,
        }


@dataclass(slots=True)
class FunctionCallOutputItem:
    id: str
    call_id: str
    output: str
    name: str = ""
    is_error: bool = False
    created_at: float = 0.0

    @property
    def type(self) -> Literal["function_call_output"]:
        return "function_call_output"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function_call_output",
            "role": "tool",
            "text": "",
            "interrupted": False,
            "played_ms": None,
            "call_id": self.call_id,
            "name": self.name,
            # Known only to the call item: `history_to_json` fills it in.
            "arguments": None,
            "output": self.output,
            "is_error": self.is_error,
        }


ConversationItem: TypeAlias = MessageItem | FunctionCallItem | FunctionCallOutputItem


def history_to_json(items: list[ConversationItem]) -> dict[str, Any]:
    """`{"items": [...]}` with each tool call and its output completing each other.

    A call gets its output's `output`; an output gets its call's `arguments` (and `name` when
    it was created without one). A call still running, or an output whose call is not in the
    history, keeps `None` there.
    """
    calls = {i.call_id: i for i in items if isinstance(i, FunctionCallItem)}
    outputs = {i.call_id: i for i in items if isinstance(i, FunctionCallOutputItem)}
    data: list[dict[str, Any]] = []
    for item in items:
        entry = item.to_json()
        if isinstance(item, FunctionCallItem) and item.call_id in outputs:
            entry["output"] = outputs[item.call_id].output
        elif isinstance(item, FunctionCallOutputItem) and item.call_id in calls:
            call = calls[item.call_id]
            entry["arguments"] = call.arguments
            entry["name"] = item.name or call.name
        data.append(entry)
    return {"items": data}
