"""Scenario files: what the simulated model answers, and which faults it injects where.

A scenario is an ordered queue of scripted responses, consumed one per response (whether the
response was requested by ``response.create`` or by server VAD). Each response holds items —
spoken/text messages and function calls — an ordering of their done events, optional
``user_transcript`` for the audio turn it answers, and faults tied to protocol positions.
The full schema with an example is in ``docs/sim-server.md``; files may be YAML or JSON.

Shorthands keep files short: an item ``{say: "..."}`` is a message, ``{call: name,
arguments: {...}}`` a function call; a response ``{say: "..."}`` is a one-message response.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator


class FaultKind(StrEnum):
    """What a scripted fault does (the driver has one handler per kind)."""

    DROP = "drop"
    STALL = "stall"
    MALFORMED_FRAME = "malformed_frame"
    UNKNOWN_EVENT = "unknown_event"
    ERROR = "error"
    FAIL = "fail"
    INCOMPLETE = "incomplete"
    SESSION_EXPIRED = "session_expired"
    SLOW_FIRST_BYTE = "slow_first_byte"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MessageSpec(_Model):
    """An assistant message: spoken with espeak (or text-only in a text session)."""

    type: Literal["message"] = "message"
    text: str
    phase: str | None = None
    voice: str | None = Field(default=None, description="espeak voice overriding the session's")
    # Digital silence streamed before the speech (audio output only): latency tests can tell
    # "first audio byte" from "first audible audio" (field problem S26).
    leading_silence_ms: int = Field(default=0, ge=0, le=60000)


class FunctionCallSpec(_Model):
    """A function call; emitted only when the tool is available to the response."""

    type: Literal["function_call"] = "function_call"
    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)
    call_id: str | None = None
    phase: str | None = None

    @property
    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)


class McpCallSpec(_Model):
    """A call of a tool on an MCP server the session declared (``type: mcp`` tool).

    Emitted only when the session has an ``mcp`` tool with this ``server_label`` (or, without
    a label, exactly one ``mcp`` tool). When that tool requires approval (its
    ``require_approval`` is ``always``, the API's default, or names this tool), the response
    carries an ``mcp_approval_request`` instead, and the call runs in a later response once the
    client approved it with an ``mcp_approval_response`` item (a refusal skips it).
    """

    type: Literal["mcp_call"] = "mcp_call"
    name: str
    server_label: str | None = None
    arguments: dict[str, Any] | str = Field(default_factory=dict)

    @property
    def arguments_json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments)


class McpToolSpec(_Model):
    """One tool a simulated MCP server lists, and what calling it returns."""

    name: str
    description: str = ""
    input_schema: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    output: str | dict[str, Any] | list[Any] = ""
    error: str | None = None  # the call fails with this message instead

    @property
    def output_text(self) -> str:
        return self.output if isinstance(self.output, str) else json.dumps(self.output)


class McpServerSpec(_Model):
    """A simulated MCP server: the tools ``mcp_list_tools`` reports for its label."""

    server_label: str
    tools: list[McpToolSpec] = Field(default_factory=list)


def _expand_item(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    data = dict(value)
    if "say" in data:
        data["text"] = data.pop("say")
        data.setdefault("type", "message")
    elif "call" in data:
        data["name"] = data.pop("call")
        data.setdefault("type", "function_call")
    elif "mcp_call" in data:
        data["name"] = data.pop("mcp_call")
        data.setdefault("type", "mcp_call")
    elif "type" not in data:
        data["type"] = "function_call" if "name" in data else "message"
    return data


ItemSpec = Annotated[
    MessageSpec | FunctionCallSpec | McpCallSpec,
    Field(discriminator="type"),
    BeforeValidator(_expand_item),
]


class AudioPosition(_Model):
    """A point in the audio of output item ``item`` (its index in the response)."""

    item: int = 0
    ms: float


class FaultSpec(_Model):
    """One fault, fired once at a protocol position of its response.

    Exactly one position: ``after_event`` (a server event type of this response, optionally
    restricted to ``output_index`` and counted with ``occurrence``), ``after_audio_ms`` (after
    the audio delta that reaches that point of an item), or ``before_response_created``.
    ``slow_first_byte`` defaults to ``before_response_created``.
    """

    kind: FaultKind
    after_event: str | None = None
    output_index: int | None = None
    occurrence: int = 1
    after_audio_ms: AudioPosition | None = None
    before_response_created: bool = False
    seconds: float = 0.0
    code: str | None = None
    message: str | None = None
    error_type: str | None = None
    param: str | None = None
    event_type: str = "response.simulated_unknown_event"
    frame: str | None = None
    # `incomplete`: the response.done status_details reason (OpenAI: max_output_tokens or
    # content_filter).
    reason: str = "max_output_tokens"

    @model_validator(mode="after")
    def _one_position(self) -> FaultSpec:
        positions = sum((self.after_event is not None, self.after_audio_ms is not None)) + int(
            self.before_response_created
        )
        if positions == 0 and self.kind is FaultKind.SLOW_FIRST_BYTE:
            return self.model_copy(update={"before_response_created": True})
        if positions != 1:
            raise ValueError(
                "a fault needs exactly one of after_event, after_audio_ms, before_response_created"
            )
        if self.kind is FaultKind.SLOW_FIRST_BYTE and not self.before_response_created:
            raise ValueError("slow_first_byte happens before_response_created")
        return self


def _expand_response(value: Any) -> Any:
    if isinstance(value, str):
        return {"items": [{"type": "message", "text": value}]}
    if isinstance(value, dict) and "say" in value and "items" not in value:
        data = dict(value)
        data["items"] = [{"type": "message", "text": data.pop("say")}]
        return data
    return value


class ResponseSpec(_Model):
    """One scripted response."""

    items: list[ItemSpec] = Field(default_factory=list)
    ordering: Literal["sequential", "overlapping"] = "sequential"
    user_transcript: str | None = None
    faults: list[FaultSpec] = Field(default_factory=list)


class LostAckSpec(_Model):
    """Lose the acknowledgement of a client-created item: the item enters the conversation,
    but its ``conversation.item.added`` and ``.done`` are never sent (a frame lost on the
    way; the client's create times out although it went through). Counted per connection:
    the ``occurrence``-th create of an ``item_type`` item."""

    item_type: str = "function_call_output"
    occurrence: int = Field(default=1, ge=1)
    # Only on the server's n-th connection (1-based); None: on every connection.
    connection: int | None = Field(default=None, ge=1)


class LostRetrieveSpec(_Model):
    """Lose the answer to a ``conversation.item.retrieve``: the server reads it but neither
    ``conversation.item.retrieved`` nor an error is ever sent (the client's retrieve times
    out). Counted per connection: the ``occurrence``-th retrieve."""

    occurrence: int = Field(default=1, ge=1)
    # Only on the server's n-th connection (1-based); None: on every connection.
    connection: int | None = Field(default=None, ge=1)


class ServerSpec(_Model):
    """Connection-level behaviour."""

    # connection: every connection plays the script from the top (independent conversations,
    # e.g. concurrent benchmark sessions). server: one script for the whole server, so a client
    # that reconnects continues where its previous connection stopped and each scripted fault
    # fires once per server (reconnect tests).
    script_scope: Literal["connection", "server"] = "connection"
    on_connect_delay_s: float = 0.0
    session_max_seconds: float | None = None
    truncate_granularity_ms: int = 1
    transcript_lookahead_ms: float = 200.0
    # On by default like the real service: conversation.created after session.created, and
    # rate_limits.updated after every response.done.
    send_conversation_created: bool = True
    rate_limits_updated: bool = True
    voice: str = "marin"
    lost_item_acks: list[LostAckSpec] = Field(default_factory=list)
    lost_retrieves: list[LostRetrieveSpec] = Field(default_factory=list)


class BrainSpec(_Model):
    """The default brain used once the scripted queue is exhausted."""

    echo: bool = True
    echo_prefix: str = "You said: "
    tool_followup: str = "Here is what I found: {output}"
    sentences: list[str] = Field(
        min_length=1,
        default_factory=lambda: [
            "Hello! I am the vocalis simulated model.",
            "I am a local simulation, so my answers are scripted.",
            "Could you tell me a bit more about that?",
            "Sure, I can help with that.",
        ],
    )


class Scenario(_Model):
    """A whole scenario file."""

    name: str = "default"
    description: str = ""
    seed: int = 0
    server: ServerSpec = Field(default_factory=ServerSpec)
    brain: BrainSpec = Field(default_factory=BrainSpec)
    mcp_servers: list[McpServerSpec] = Field(default_factory=list)
    responses: list[Annotated[ResponseSpec, BeforeValidator(_expand_response)]] = Field(
        default_factory=list
    )


def load_scenario(source: str | Path | dict[str, Any]) -> Scenario:
    """Load a scenario from a YAML/JSON file path or an already-parsed mapping."""
    if isinstance(source, dict):
        return Scenario.model_validate(source)
    path = Path(source)
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    return Scenario.model_validate(data or {})
