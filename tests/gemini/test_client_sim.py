"""The Gemini client (`GeminiRealtimeModel`) against the Gemini sim over real sockets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from vocalis.conversation.items import (
    ConversationItem,
    FunctionCallItem,
    FunctionCallOutputItem,
    MessageItem,
)
from vocalis.providers.base import (
    ErrorKind,
    Generation,
    GenerationStarted,
    InputAudioCommitted,
    InputSpeechStarted,
    InputTranscription,
    OperationError,
    ProviderError,
    ProviderEvent,
    ProviderLimits,
    SessionClosed,
    SessionOptions,
    SessionReconnected,
    ToolSpec,
)
from vocalis.providers.gemini import GeminiRealtimeModel, GeminiRealtimeSession, HeardStrategy
from vocalis.providers.item_bound import ITEM_BUDGET_CODE
from vocalis.sim.gemini import DIALECT, GeminiSims, sessions_of
from vocalis.sim.server import SimServer

from .sim_support import WEATHER_RESPONSES, assert_wire_valid, caller_speech

SCENARIO: dict[str, Any] = {
    "server": {"script_scope": "server"},
    "responses": [*WEATHER_RESPONSES, {"user_transcript": "Stop, thanks.", "say": "Okay."}],
}
TOOLS = (
    ToolSpec(
        "get_weather",
        "Weather for a city.",
        {"type": "object", "properties": {"city": {"type": "string"}}},
    ),
)


class Events:
    """Collects a session's provider events; waits on them by predicate."""

    def __init__(self, session: GeminiRealtimeSession) -> None:
        self.items: list[ProviderEvent] = []
        self._changed = asyncio.Condition()
        self._task = asyncio.create_task(self._pump(session))

    async def _pump(self, session: GeminiRealtimeSession) -> None:
        async for event in session.events():
            async with self._changed:
                self.items.append(event)
                self._changed.notify_all()

    async def wait(self, kind: type[Any], n: int = 1, within: float = 10.0) -> Any:
        async with asyncio.timeout(within), self._changed:
            await self._changed.wait_for(lambda: len(self.of(kind)) >= n)
        return self.of(kind)[n - 1]

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.items if isinstance(e, kind)]


@pytest.fixture
async def server() -> AsyncIterator[SimServer]:
    async with SimServer(scenario=SCENARIO, pace=0.0, dialects=[DIALECT]) as sim:
        yield sim
        # What went over the wire both ways is what google-genai's types accept.
        assert_wire_valid(sessions_of(sim))


async def _connect(server: SimServer, **kw: Any) -> tuple[GeminiRealtimeSession, Events]:
    model = GeminiRealtimeModel(
        "gemini-2.5-flash-native-audio-preview-09-2025",
        api_key="test",
        base_url=server.base_url,
        reconnect_backoff_s=0.05,
        **kw,
    )
    session = await model.connect(
        SessionOptions(instructions="Be brief.", voice="Kore", tools=TOOLS)
    )
    return session, Events(session)


def _speak(session: GeminiRealtimeSession, text: str, **kw: Any) -> None:
    samples = caller_speech(text, **kw)
    for start in range(0, len(samples), 320):
        session.append_audio(samples[start : start + 320])


async def _drain(generation: Generation) -> tuple[list[str], float]:
    """Every message's text and the total audio ms of a generation (waits for its end)."""
    texts: list[str] = []
    audio_ms = 0.0
    async for message in generation.messages:
        async for _ in message.audio:
            pass
        texts.append("".join([t async for t in message.text]))
        audio_ms += message.audio_received_ms
    await generation.done
    return texts, audio_ms


async def test_spoken_turn_tool_call_and_follow_up(server: SimServer) -> None:
    session, events = await _connect(server)
    sims: GeminiSims = sessions_of(server)
    sim = (await sims.wait_for_connection(1)).session
    assert (
        sim.setup is not None
        and sim.setup.voice == "Kore"
        and sim.setup.tool_names == ("get_weather",)
    )
    _speak(session, "What is the weather in Paris?")
    started = await events.wait(GenerationStarted)
    texts, audio_ms = await _drain(started.generation)
    done = started.generation.done.result()
    assert texts == ["Let me check the weather for you."] and audio_ms > 1000
    assert (done.status, done.reason) == ("completed", "tool_call")
    call = started.generation.tool_calls.try_recv()
    assert call is not None and call.name == "get_weather" and call.arguments == '{"city":"Paris"}'
    transcript = [e for e in events.of(InputTranscription) if e.final]
    assert transcript[0].text == "What is the weather in Paris?"

    output_id = await session.send_tool_output(call.call_id, '{"sky": "sunny"}')
    follow_up = await session.generate_reply()
    texts, _ = await _drain(follow_up)
    assert texts == ["It is sunny in Paris right now."]
    assert [t.kind for t in session.protocol.server_record] == [
        "user",
        "model",
        "function_call",
        "function_response",
        "model",
    ]
    assert output_id.startswith("fo_")
    await session.aclose()


async def test_cancelled_call_gets_no_output(server: SimServer) -> None:
    session, events = await _connect(server)
    conn = await sessions_of(server).wait_for_connection(1)
    _speak(session, "What is the weather in Paris?")
    started = await events.wait(GenerationStarted)
    await _drain(started.generation)
    call = started.generation.tool_calls.try_recv()
    assert call is not None
    _speak(session, "Stop, thanks.", silence_after_ms=0)  # barge-in while the tool runs
    # The service sends toolCallCancellation, then interrupted (read as caller speech).
    await events.wait(InputSpeechStarted)
    assert conn.session.cancelled_call_ids == [call.call_id]
    with pytest.raises(OperationError) as refused:
        await session.send_tool_output(call.call_id, "{}")
    assert refused.value.kind is ErrorKind.NOT_FOUND and refused.value.code == "tool_call_cancelled"
    assert conn.session.late_tool_responses == []
    await session.aclose()


async def test_drop_resumes_with_the_last_handle(server: SimServer) -> None:
    session, events = await _connect(server)
    sims = sessions_of(server)
    first = await sims.wait_for_connection(1)
    await first.wait_for(lambda s: len(s.server_messages) >= 2)  # setupComplete + handle
    first.drop()
    reconnected = await events.wait(SessionReconnected)
    assert reconnected.reason == "dropped"
    second = await sims.wait_for_connection(2)
    await second.wait_for(lambda s: s.setup is not None)
    assert second.session.resumed_from is not None
    assert session.reconnects == 1
    await session.aclose()


async def test_go_away_switches_to_a_resumed_connection(server: SimServer) -> None:
    session, _ = await _connect(server)
    sims = sessions_of(server)
    first = await sims.wait_for_connection(1)
    await first.wait_for(lambda s: len(s.server_messages) >= 2)
    first.go_away(3.0)
    second = await sims.wait_for_connection(2)
    await second.wait_for(lambda s: s.setup is not None)
    assert second.session.resumed_from is not None
    await first.wait_for(lambda s: s.closed is not None)
    assert session.connected
    await session.aclose()


async def test_heard_checkpoint_reseeds_a_fresh_session(server: SimServer) -> None:
    """After a barge-in the service holds the whole answer; the checkpoint re-seeds a new
    session with only the heard part, and the caller's barge-in is replayed into it."""
    session, events = await _connect(server, heard_strategy=HeardStrategy.RESEED)
    sims = sessions_of(server)
    _speak(session, "What is the weather in Paris?")
    g1 = (await events.wait(GenerationStarted, 1)).generation
    await _drain(g1)
    call = g1.tool_calls.try_recv()
    assert call is not None
    await session.send_tool_output(call.call_id, '{"sky": "sunny"}')
    await _drain(await session.generate_reply())
    _speak(session, "And tomorrow?")
    g3 = (await events.wait(GenerationStarted, 3)).generation
    await _drain(g3)
    _speak(session, "Stop, thanks.", silence_after_ms=0)
    first = await sims.wait_for_connection(1)
    await first.wait_for(lambda s: s.history.turns[-1].interrupted)
    heard: list[ConversationItem] = [
        MessageItem("user_000001", "user", "What is the weather in Paris?"),
        MessageItem(g1.announced_item_ids[0], "assistant", "Let me check the weather for you."),
        FunctionCallItem(f"fc_{call.call_id}", call.call_id, "get_weather", call.arguments),
        FunctionCallOutputItem(
            f"fo_{call.call_id}", call.call_id, '{"sky": "sunny"}', name="get_weather"
        ),
        MessageItem("model_x", "assistant", "It is sunny in Paris right now."),
        MessageItem("user_y", "user", "And tomorrow?"),
        MessageItem(g3.announced_item_ids[0], "assistant", "Tomorrow will be", interrupted=True),
    ]
    await session.sync_history(heard)
    assert session.reseeds == 1
    session.append_audio(_silence(1000))  # the caller's line goes on: their turn ends
    second = await sims.wait_for_connection(2)
    # The replayed barge-in is answered by the new session, on the heard history.
    await second.wait_for(lambda s: s.history.texts()[-1:] == [("model", "Okay.")])
    texts = second.session.history.texts()
    assert texts == [
        ("user", "What is the weather in Paris?"),
        ("model", "Let me check the weather for you."),
        ("model", "It is sunny in Paris right now."),
        ("user", "And tomorrow?"),
        ("model", "Tomorrow will be"),
        ("user", "Stop, thanks."),
        ("model", "Okay."),
    ]
    assert [t.source for t in second.session.history.turns][:5] == ["client_content"] * 5
    await session.aclose()


def _silence(ms: int) -> np.ndarray:
    return np.zeros(16 * ms, dtype=np.int16)


async def test_refused_key_is_fatal_and_the_key_never_reaches_logs(
    server: SimServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    keyless = GeminiRealtimeModel(api_key="", base_url=server.base_url)
    with pytest.raises(OperationError) as refused:
        await keyless.connect(SessionOptions())
    assert refused.value.kind is ErrorKind.FATAL
    secret = "AIzaSy-very-secret-key-0123456789"
    model = GeminiRealtimeModel(api_key=secret, base_url=server.base_url)
    assert secret not in repr(model)
    session = await model.connect(SessionOptions())
    await session.aclose()
    assert "x-goog-api-key" in caplog.text.lower()  # the handshake was logged ...
    assert secret not in caplog.text  # ... with the key redacted


async def test_a_long_running_server_bounds_what_it_keeps() -> None:
    """As `vocalis sim-server` runs it: no in-memory message records, few ended connections."""
    async with SimServer(dialects=[DIALECT], max_recorded_events=0, max_closed_sessions=2) as sim:
        for _ in range(5):
            model = GeminiRealtimeModel(api_key="k", base_url=sim.base_url)
            session = await model.connect(SessionOptions())
            await session.aclose()
        sims = sessions_of(sim)
        last = await sims.wait_for_connection(5)
        await last.wait_for(lambda s: s.closed is not None)
        assert sims.accepted == 5 and len(sims.connections) <= 3
        assert all(len(c.session.client_messages) == 0 for c in sims.connections)


async def test_manual_turns_past_the_item_bound_end_the_call(server: SimServer) -> None:
    """Each committed manual turn is a caller item and counts against `max_call_items`: past
    it the call ends with the one `item_budget` error, as for items the service starts —
    `commit_audio` itself does not fail (it raised the core's internal exception)."""
    model = GeminiRealtimeModel(
        api_key="test", base_url=server.base_url, limits=ProviderLimits(max_call_items=1)
    )
    session = await model.connect(SessionOptions(turn_detection=None))
    events = Events(session)
    for _ in range(2):  # the second turn is the call's second item
        session.append_audio(_silence(100))
        await session.commit_audio()
    closed = await events.wait(SessionClosed)
    assert closed.reason == "fatal"
    assert closed.error is not None and closed.error.code == ITEM_BUDGET_CODE
    assert len(events.of(InputAudioCommitted)) == 1
    errors = [e for e in events.of(ProviderError) if e.code == ITEM_BUDGET_CODE]
    assert len(errors) == 1
    await session.aclose()
