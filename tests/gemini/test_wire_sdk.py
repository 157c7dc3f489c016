"""Every message the Gemini client writes, and every one the sim answers with, is one
google-genai's own types accept.

Why: the service refuses a message with a field it does not know or a value of the wrong
shape (it closes with 1007, and the call is lost), and the SDK's pydantic types
(``LiveClientMessage``: unknown fields forbidden) are the closest stand-in for its schema that
runs here. The sim-driven tests check what real calls write (`sim_support.assert_wire_valid`);
these check the builders over every session option and history shape, and every server
message builder of the sim (``LiveServerMessage``, no field lost).
"""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from vocalis.conversation.items import (
    ConversationItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    MessageItem,
)
from vocalis.providers.base import SessionOptions, ToolSpec, TurnDetection
from vocalis.providers.gemini import GeminiRealtimeModel, VertexAI, wire
from vocalis.providers.gemini.heard import Unheard, correction_note, note_turn
from vocalis.sim.gemini import messages as msg

from .sim_support import assert_client_strict, assert_strict

# Text a caller, an app or a model writes (no lone surrogates: no JSON encoder writes them).
TEXT = st.text(st.characters(codec="utf-8"), max_size=24)
NAMES = st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
# What a tool's output or a call's arguments may be: JSON of any kind, or not JSON at all.
JSON_OR_NOT = JSON_VALUES.map(json.dumps) | TEXT | st.sampled_from(["NaN", "1e400", "[1,"])

PARAMETERS = st.one_of(
    st.just({}),
    st.just({"type": "object", "properties": {}}),
    st.builds(
        lambda names: {
            "type": "object",
            "properties": {n: {"type": "string", "description": "x"} for n in names},
            "required": names[:1],
        },
        st.lists(NAMES, min_size=1, max_size=3, unique=True),
    ),
)
TOOLS = st.lists(st.builds(ToolSpec, NAMES, TEXT, PARAMETERS), max_size=3).map(tuple)
TURN_DETECTION = st.none() | st.builds(
    TurnDetection,
    prefix_padding_ms=st.none() | st.integers(0, 2000),
    silence_duration_ms=st.none() | st.integers(0, 5000),
    interrupt_response=st.booleans(),
)
OPTIONS = st.builds(
    SessionOptions,
    instructions=st.none() | TEXT,
    voice=st.none() | st.sampled_from(["Puck", "Kore", "Aoede"]),
    output_modalities=st.sampled_from([("audio",), ("text",), ("audio", "text")]),
    turn_detection=TURN_DETECTION,
    tools=TOOLS,
    max_output_tokens=st.none() | st.integers(1, 8192) | st.just("inf"),
)
MODELS = st.sampled_from(
    [
        GeminiRealtimeModel("gemini-x", api_key="k"),
        GeminiRealtimeModel("models/gemini-x", api_key="auth_tokens/t"),
        GeminiRealtimeModel("gemini-live-2.5-flash", vertex=VertexAI("p", access_token="t")),
    ]
)
ITEMS = st.lists(
    st.one_of(
        st.builds(MessageItem, NAMES, st.sampled_from(["user", "assistant", "system"]), TEXT),
        st.builds(FunctionCallItem, NAMES, st.sampled_from(["c1", "c2"]), NAMES, JSON_OR_NOT),
        st.builds(FunctionCallOutputItem, NAMES, st.sampled_from(["c1", "c2"]), JSON_OR_NOT, NAMES),
    ),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(MODELS, OPTIONS, st.none() | TEXT)
def test_every_setup_is_a_live_client_message(
    model: GeminiRealtimeModel, options: SessionOptions, handle: str | None
) -> None:
    assert_client_strict(wire.dumps(model.setup_for(options, handle)))


@settings(max_examples=300, deadline=None)
@given(ITEMS, st.booleans())
def test_every_seeded_history_is_a_live_client_message(
    items: list[ConversationItem], complete: bool
) -> None:
    assert_client_strict(
        wire.dumps(wire.client_content(wire.history_turns(items), turn_complete=complete))
    )


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["c1", "call-7"]), NAMES, JSON_OR_NOT)
def test_every_tool_response_is_a_live_client_message(call_id: str, name: str, output: str) -> None:
    assert_client_strict(wire.dumps(wire.tool_response(call_id, name, output)))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.builds(Unheard, NAMES, TEXT, TEXT), min_size=1, max_size=3), TEXT)
def test_notes_and_reply_requests_are_live_client_messages(
    unheard: list[Unheard], instructions: str
) -> None:
    """The correction note (heard checkpoint) and `generate_reply`'s turn, with and without
    instructions."""
    note = note_turn(correction_note(unheard))
    assert_client_strict(wire.dumps(wire.client_content([note], turn_complete=False)))
    assert_client_strict(wire.dumps(wire.client_content([], turn_complete=True)))
    asked = [{"role": "user", "parts": [{"text": instructions}]}]
    assert_client_strict(wire.dumps(wire.client_content(asked, turn_complete=True)))


def test_realtime_input_frames_are_live_client_messages() -> None:
    for samples in (
        np.zeros(0, np.int16),
        np.zeros(320, np.int16),
        np.arange(-50, 50, dtype=np.int16),
    ):
        assert_client_strict(wire.audio_frame(samples))
    for frame in (wire.ACTIVITY_START, wire.ACTIVITY_END, wire.AUDIO_STREAM_END):
        assert_client_strict(frame)


@settings(max_examples=200, deadline=None)
@given(
    TEXT,
    st.booleans(),
    st.none() | NAMES,
    st.floats(-5, 1e6, allow_nan=False),
    st.builds(msg.Usage, *[st.integers(0, 10**6)] * 4),
    st.lists(st.builds(msg.Call, NAMES, NAMES, st.dictionaries(TEXT, JSON_VALUES)), max_size=3),
)
def test_every_sim_server_message_is_a_live_server_message(
    text: str,
    finished: bool,
    handle: str | None,
    seconds_left: float,
    usage: msg.Usage,
    calls: list[msg.Call],
) -> None:
    messages = [
        msg.setup_complete(),
        msg.audio_part("AAAA"),
        msg.text_part(text),
        msg.output_transcription(text),
        msg.input_transcription(text, finished=finished),
        msg.interrupted(),
        msg.generation_complete(),
        msg.turn_complete(),
        msg.tool_call(calls),
        msg.tool_call_cancellation([call.id for call in calls]),
        msg.go_away(seconds_left),
        msg.resumption_update(handle),
        msg.usage_metadata(usage),
    ]
    for message in messages:
        assert_strict(json.dumps(message))
