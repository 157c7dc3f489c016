"""Session payloads per dialect, the partial-update diff, and the history sync/replay decisions."""

from __future__ import annotations

from typing import Any

from vocalis.conversation.items import (
    ConversationItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    MessageItem,
)
from vocalis.providers.base import Capabilities, SessionOptions, ToolSpec, TurnDetection
from vocalis.providers.openai.formats import audio_format
from vocalis.providers.openai.history import plan_history_ops, replay_history, unanswered_input
from vocalis.providers.openai.protocol import OpenAIProtocol
from vocalis.providers.openai.realtime import OpenAIRealtimeModel
from vocalis.providers.openai.session_config import build_session, session_diff

from .openai_script import ev, message_deltas, message_end, message_start, response_created

PCM = audio_format("pcm16")
TOOL = ToolSpec("lookup", "Look something up.", {"type": "object", "properties": {}})


def test_ga_session_shape() -> None:
    options = SessionOptions(
        instructions="Be brief.",
        voice="marin",
        turn_detection=TurnDetection(
            type="server_vad", threshold=0.6, silence_duration_ms=300, create_response=False
        ),
        input_transcription_model="gpt-4o-mini-transcribe",
        input_transcription_language="en",
        tools=(TOOL,),
        tool_choice="lookup",
        speed=1.1,
        max_output_tokens=512,
    )
    session = build_session(options, dialect="openai", audio_format=PCM)
    assert session == {
        "type": "realtime",
        "output_modalities": ["audio"],
        "instructions": "Be brief.",
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "turn_detection": {
                    "type": "server_vad",
                    "create_response": False,
                    "interrupt_response": True,
                    "threshold": 0.6,
                    "silence_duration_ms": 300,
                },
                "transcription": {"model": "gpt-4o-mini-transcribe", "language": "en"},
            },
            "output": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "voice": "marin",
                "speed": 1.1,
            },
        },
        "tools": [
            {
                "type": "function",
                "name": "lookup",
                "description": "Look something up.",
                "parameters": {"type": "object", "properties": {}},
            }
        ],
        "tool_choice": {"type": "function", "name": "lookup"},
        "max_output_tokens": 512,
    }
    # Beta-era keys must never appear (GA rejects them with unknown_parameter).
    assert not {"modalities", "voice", "input_audio_format", "temperature"} & set(session)
    assert "reasoning" not in session


def test_semantic_vad_manual_turns_text_and_reasoning() -> None:
    semantic = build_session(
        SessionOptions(
            turn_detection=TurnDetection(type="semantic_vad", eagerness="low"),
            reasoning_effort="high",
            output_modalities=("text",),
        ),
        dialect="azure",
        audio_format=audio_format("g711_alaw"),
    )
    assert semantic["audio"]["input"]["turn_detection"] == {
        "type": "semantic_vad",
        "create_response": True,
        "interrupt_response": True,
        "eagerness": "low",
    }
    assert semantic["reasoning"] == {"effort": "high"}
    assert semantic["output_modalities"] == ["text"]
    assert semantic["audio"]["output"]["format"] == {"type": "audio/pcma"}
    manual = build_session(SessionOptions(turn_detection=None), dialect="openai", audio_format=PCM)
    assert manual["audio"]["input"]["turn_detection"] is None
    assert manual["tools"] == []


def test_xai_flat_session() -> None:
    session = build_session(
        SessionOptions(
            instructions="Hi",
            voice="Ara",
            turn_detection=TurnDetection(type="semantic_vad"),
            reasoning_effort="low",
        ),
        dialect="xai",
        audio_format=PCM,
    )
    assert session["voice"] == "Ara"
    assert session["turn_detection"]["type"] == "server_vad"  # xAI has only server VAD
    assert session["reasoning"] == {"effort": "none"}
    assert "type" not in session and "output_modalities" not in session
    assert session["audio"] == {
        "input": {"format": {"type": "audio/pcm", "rate": 24000}},
        "output": {"format": {"type": "audio/pcm", "rate": 24000}},
    }


def test_session_diff_sends_only_changes_and_keeps_type() -> None:
    old = build_session(
        SessionOptions(voice="marin", instructions="A"), dialect="openai", audio_format=PCM
    )
    new = build_session(
        SessionOptions(voice="marin", instructions="B"), dialect="openai", audio_format=PCM
    )
    assert session_diff(old, new) == {"type": "realtime", "instructions": "B"}
    newer = build_session(
        SessionOptions(voice="cedar", instructions="B", turn_detection=None),
        dialect="openai",
        audio_format=PCM,
    )
    assert session_diff(new, newer) == {
        "type": "realtime",
        "audio": {"input": {"turn_detection": None}, "output": {"voice": "cedar"}},
    }


def test_urls_headers_and_repr_per_dialect(monkeypatch: Any) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-secret")
    model = OpenAIRealtimeModel("gpt-realtime-2")
    assert model.url == "wss://api.openai.com/v1/realtime?model=gpt-realtime-2"
    assert model._headers() == {"Authorization": "Bearer sk-env-secret"}
    assert "sk-env-secret" not in repr(model)
    azure = OpenAIRealtimeModel(
        "my-deployment",
        api_key="azure-secret",
        dialect="azure",
        base_url="https://res.openai.azure.com/openai/v1",
    )
    assert azure.url == "wss://res.openai.azure.com/openai/v1/realtime?model=my-deployment"
    assert azure._headers() == {"api-key": "azure-secret"}
    monkeypatch.setenv("XAI_API_KEY", "xai-secret")
    xai = OpenAIRealtimeModel("grok-voice-latest", dialect="xai")
    assert xai.url == "wss://api.x.ai/v1/realtime?model=grok-voice-latest"
    assert xai._headers() == {"Authorization": "Bearer xai-secret"}
    assert xai.capabilities == Capabilities(
        truncation=False,
        text_only_output=False,
        multi_message_responses=False,
        manual_turns=False,
    )
    assert model.capabilities == azure.capabilities == Capabilities()  # everything, 24 kHz
    g711 = OpenAIRealtimeModel(api_key="k", audio_format="g711_ulaw").capabilities
    assert (g711.input_sample_rate, g711.output_sample_rate) == (8000, 8000)
    for headers in (model._headers(), azure._headers(), xai._headers()):
        assert not any(k.lower() == "openai-beta" for k in headers)


# --------------------------------------------------------------------------- history decisions


def core_with_turn() -> OpenAIProtocol:
    """Mirror: u1 (typed by us), A1 (assistant audio), U2 (user audio committed later)."""
    core = OpenAIProtocol(audio_format=PCM)
    create = core.create(
        {
            "id": "u1",
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "hi"}],
        },
        local_id="u1",
        previous_item_id=None,
    )
    item = create.event["item"]
    core.receive(ev("conversation.item.added", previous_item_id=None, item=item))
    events = [response_created("R1"), *message_start("R1", "A1", 0, "u1")]
    events += message_deltas("R1", "A1", 0, ["Hello"], chunk_ms=100)
    events += message_end("R1", "A1", 0, "Hello", "u1")
    events += [ev("response.done", response={"id": "R1", "status": "completed", "output": []})]
    events += [ev("input_audio_buffer.committed", item_id="U2", previous_item_id="A1")]
    for event in events:
        core.receive(event)
    assert core.mirror.ids() == ["u1", "A1", "U2"]
    return core


def wire(ops: list[Any]) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = []
    for op in ops:
        event = op.event
        if event["type"] == "conversation.item.delete":
            out.append(("delete", event["item_id"]))
        else:
            out.append(("create:" + event["item"]["id"], event.get("previous_item_id")))
    return out


async def test_sync_sends_nothing_when_heard_equals_provider() -> None:
    core = core_with_turn()
    heard: list[ConversationItem] = [
        MessageItem(id="u1", role="user", text="hi"),
        MessageItem(id="A1", role="assistant", text="Hel", played_ms=40.0, interrupted=True),
    ]
    # A1's audio is the truth (a truncate records the cut); U2 is newer than the caller's view.
    assert plan_history_ops(core, heard) == []


async def test_sync_replaces_edited_text_deletes_dropped_and_creates_new() -> None:
    core = core_with_turn()
    heard: list[ConversationItem] = [
        MessageItem(id="sys", role="system", text="Be nice."),
        MessageItem(id="u1", role="user", text="hi there"),  # edited typed text
        MessageItem(id="A1", role="assistant", text="", played_ms=0.0),  # never heard
        MessageItem(id="U2", role="user", text="what?"),  # audio item, transcript only
    ]
    assert wire(plan_history_ops(core, heard)) == [
        ("delete", "u1"),
        ("delete", "A1"),
        ("create:sys", "root"),
        ("create:u1", "sys"),
    ]


async def test_sync_never_deletes_running_or_newer_items() -> None:
    core = core_with_turn()
    # Items newer than the last one the caller refers to are newer than its view: kept.
    assert plan_history_ops(core, [MessageItem(id="u1", role="user", text="hi")]) == []
    # A response starts (A2 after U2), then a typed item u3 lands after it.
    core.receive(response_created("R2"))
    for event in message_start("R2", "A2", 0, "U2"):
        core.receive(event)
    u3 = {
        "id": "u3",
        "type": "message",
        "role": "user",
        "content": [{"type": "input_text", "text": "x"}],
    }
    core.receive(ev("conversation.item.added", previous_item_id="A2", item=u3))
    assert core.mirror.ids() == ["u1", "A1", "U2", "A2", "u3"]
    heard: list[ConversationItem] = [
        MessageItem(id="A1", role="assistant", text="Hello"),
        MessageItem(id="u3", role="user", text="x"),
    ]
    # u1 and U2 are deliberately left out: deleted. A2 belongs to the running response: kept.
    assert wire(plan_history_ops(core, heard)) == [("delete", "u1"), ("delete", "U2")]


async def test_replay_uses_heard_text_and_adds_newer_user_and_tool_items() -> None:
    core = core_with_turn()
    core.receive(
        ev(
            "conversation.item.input_audio_transcription.completed",
            item_id="U2",
            content_index=0,
            transcript="weather?",
        )
    )
    for event in [
        ev(
            "conversation.item.added",
            item={
                "id": "F",
                "type": "function_call",
                "status": "completed",
                "call_id": "c1",
                "name": "w",
                "arguments": "{}",
            },
        ),
        ev(
            "conversation.item.added",
            item={"id": "O", "type": "function_call_output", "call_id": "c1", "output": "18C"},
        ),
    ]:
        core.receive(event)
    heard: list[ConversationItem] = [
        MessageItem(id="u1", role="user", text="hi"),
        MessageItem(id="A1", role="assistant", text="Hel", played_ms=40.0, interrupted=True),
    ]
    replay = replay_history(core, heard, heard_seq=2)
    assert [(type(i).__name__, i.id) for i in replay] == [
        ("MessageItem", "u1"),
        ("MessageItem", "A1"),
        ("MessageItem", "U2"),
        ("FunctionCallItem", "F"),
        ("FunctionCallOutputItem", "O"),
    ]
    assert isinstance(replay[1], MessageItem) and replay[1].text == "Hel"
    assert isinstance(replay[2], MessageItem) and replay[2].text == "weather?"
    assert isinstance(replay[3], FunctionCallItem) and replay[3].call_id == "c1"
    assert isinstance(replay[4], FunctionCallOutputItem) and replay[4].output == "18C"


async def test_unanswered_input_is_caller_input_nothing_answers() -> None:
    core = core_with_turn()  # u1, A1, then the caller's U2: committed, no response yet
    heard: list[ConversationItem] = [
        MessageItem(id="u1", role="user", text="hi"),
        MessageItem(id="A1", role="assistant", text="Hello"),
    ]
    transcript = ev(
        "conversation.item.input_audio_transcription.completed",
        item_id="U2",
        content_index=0,
        transcript="weather?",
    )
    core.receive(transcript)
    replay = replay_history(core, heard, heard_seq=2)
    assert unanswered_input(core, replay) == "U2"
    # Also when the caller's own history already holds the turn (synced after the commit).
    assert unanswered_input(core, [*heard, MessageItem(id="U2", role="user", text="w")]) == "U2"
    # The lost session ends with an answer: nothing is owed, whatever the replay ends with.
    assert unanswered_input(core, heard) is None
    # A response that was created but had announced nothing answered nothing.
    core.receive(response_created("R2"))
    assert unanswered_input(core, replay_history(core, heard, heard_seq=2)) == "U2"
    # Once its message exists (even still streaming), an answer has started.
    for event in message_start("R2", "A2", 0, "U2"):
        core.receive(event)
    assert unanswered_input(core, replay_history(core, heard, heard_seq=2)) is None


async def test_unanswered_tool_output() -> None:
    core = core_with_turn()
    call = {
        "id": "F",
        "type": "function_call",
        "status": "completed",
        "call_id": "c1",
        "name": "w",
        "arguments": "{}",
    }
    output = {"id": "O", "type": "function_call_output", "call_id": "c1", "output": "18C"}
    for item in (call, output):
        core.receive(ev("conversation.item.added", item=item))
    heard: list[ConversationItem] = [MessageItem(id="u1", role="user", text="hi")]
    replay = replay_history(core, heard, heard_seq=1)
    assert [i.id for i in replay][-2:] == ["F", "O"]
    assert unanswered_input(core, replay) == "O"
    # A caller item the provider never held: judged after the newest input it does hold.
    assert unanswered_input(core, [*replay, MessageItem(id="x", role="user", text="?")]) == "x"
