"""Server VAD on real espeak speech: turns, session-cumulative positions, barge-in."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

from vocalis.audio.espeak import synthesize
from vocalis.audio.g711 import ulaw_encode
from vocalis.sim.server import SimServer

from .conftest import Client, open_client

CALLER = "Hello, what is the weather like in Paris today?"
CALLER_VOICE = "en-gb+m3"  # different from the agent's voice
AGENT_LONG = (
    "Paris is a large city with many districts, and the weather there changes quickly, "
    "so let me describe it in some detail for you."
)
HOLD = {"kind": "stall", "seconds": 60, "after_audio_ms": {"item": 0, "ms": 800}}


def _caller_audio(
    lead_ms: int = 1000, tail_ms: int = 1000, rate: int = 24000
) -> tuple[np.ndarray[Any, Any], float]:
    clip = synthesize(CALLER, voice=CALLER_VOICE, sample_rate=rate)
    silence = np.zeros(rate * lead_ms // 1000, dtype=np.int16)
    tail = np.zeros(rate * tail_ms // 1000, dtype=np.int16)
    return np.concatenate([silence, clip.samples, tail]), clip.words[-1].end_ms


async def _append(client: Client, payload: bytes, chunk_bytes: int) -> None:
    for start in range(0, len(payload), chunk_bytes):
        audio = base64.b64encode(payload[start : start + chunk_bytes]).decode()
        await client.send("input_audio_buffer.append", audio=audio)


async def _read_audio(client: Client, ms: int) -> None:
    received = 0
    while received < ms * 48:
        event = await client.until("response.output_audio.delta")
        received += len(base64.b64decode(event["delta"]))


async def test_vad_turn_commits_and_answers_with_session_positions() -> None:
    scenario = {"responses": [{"user_transcript": CALLER, "say": "It is sunny in Paris."}]}
    samples, speech_end_ms = _caller_audio()
    async with SimServer(scenario=scenario) as server:
        async with open_client(server, manual_turns=False) as client:
            await client.send(
                "session.update",
                session={
                    "type": "realtime",
                    "audio": {"input": {"transcription": {"model": "gpt-4o-mini-transcribe"}}},
                },
            )
            await client.until("session.updated")
            await _append(client, samples.tobytes(), 960)  # 20 ms chunks
            started = await client.until("input_audio_buffer.speech_started")
            stopped = await client.until("input_audio_buffer.speech_stopped")
            committed = await client.until("input_audio_buffer.committed")
            await client.until("response.done")
        session = server.sessions[0]
    # session-cumulative input timeline: 1000 ms of silence came first, prefix padding 300 ms
    assert 650 <= started["audio_start_ms"] <= 1000
    silence_ms = 200  # silence_duration_ms of the default server_vad
    assert abs(stopped["audio_end_ms"] - (1000 + speech_end_ms + silence_ms)) <= 40
    assert started["item_id"] == stopped["item_id"] == committed["item_id"]
    kinds = client.types()
    after_commit = kinds[kinds.index("input_audio_buffer.committed") :]
    assert after_commit[:6] == [
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
        "response.created",
    ]
    completed = client.of_type("conversation.item.input_audio_transcription.completed")[0]
    assert completed["transcript"] == CALLER and completed["item_id"] == committed["item_id"]
    user = session.conversation.items[0]
    assert (user.role, user.text, user.id) == ("user", CALLER, committed["item_id"])
    assert user.audio_ms > 2000  # padded speech, not the leading silence
    assert session.conversation.items[1].text == "It is sunny in Paris."


async def test_barge_in_cancels_with_turn_detected() -> None:
    scenario = {
        "responses": [
            {"say": AGENT_LONG, "faults": [HOLD]},
            {"say": "Sorry, go ahead."},
        ]
    }
    samples, _ = _caller_audio(lead_ms=200, tail_ms=800)
    async with SimServer(scenario=scenario) as server:
        async with open_client(server, manual_turns=False) as client:
            await client.send("response.create")
            created = await client.until("response.created")
            first = await client.until("response.output_item.added")
            await _read_audio(client, 800)  # the response now holds (stall fault)
            await _append(client, samples.tobytes(), 960)
            await client.until("input_audio_buffer.speech_started")
            started_at = len(client.events) - 1
            done = await client.until("response.done")
            await client.until("input_audio_buffer.speech_stopped")
            second_done = await client.until("response.done")
        session = server.sessions[0]
    assert done["response"]["id"] == created["response"]["id"]
    assert done["response"]["status"] == "cancelled"
    assert done["response"]["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    assert done["response"]["output"][0]["status"] == "incomplete"
    assert client.types(start=started_at)[:7] == [
        "input_audio_buffer.speech_started",
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "conversation.item.done",
        "response.done",
    ]
    agent = session.conversation.get(first["item"]["id"])
    assert agent is not None and agent.status == "incomplete"
    assert 800 <= agent.audio_ms < 1200  # held at the 800 ms stall point
    assert second_done["response"]["status"] == "completed"
    roles = [(i.role, i.status) for i in session.conversation.items]
    assert roles == [("assistant", "incomplete"), ("user", "completed"), ("assistant", "completed")]


async def test_no_interrupt_when_interrupt_response_is_false() -> None:
    scenario = {"responses": [{"say": AGENT_LONG, "faults": [HOLD]}]}
    samples, _ = _caller_audio(lead_ms=200, tail_ms=800)
    async with (
        SimServer(scenario=scenario) as server,
        open_client(server, manual_turns=False) as client,
    ):
        await client.send(
            "session.update",
            session={
                "type": "realtime",
                "audio": {
                    "input": {"turn_detection": {"type": "server_vad", "interrupt_response": False}}
                },
            },
        )
        await client.until("session.updated")
        await client.send("response.create")
        await client.until("response.output_audio.delta")
        await _append(client, samples.tobytes(), 960)
        await client.until("input_audio_buffer.committed")
        error = await client.until("error")
        assert error["error"]["code"] == "conversation_already_has_active_response"
        assert error["error"]["event_id"] is None
        assert client.of_type("response.done") == []
        await client.send("response.cancel")
        await client.until("response.done")


async def test_g711_input_vad() -> None:
    samples, _ = _caller_audio(lead_ms=500, tail_ms=800, rate=8000)
    async with SimServer(scenario={"responses": ["Got it."]}) as server:
        async with open_client(server, manual_turns=False) as client:
            await client.send(
                "session.update",
                session={
                    "type": "realtime",
                    "audio": {"input": {"format": {"type": "audio/pcmu"}}},
                },
            )
            await client.until("session.updated")
            await _append(client, ulaw_encode(samples), 160)  # 20 ms of G.711
            started = await client.until("input_audio_buffer.speech_started")
            await client.until("response.done")
        user = server.sessions[0].conversation.items[0]
    assert 150 <= started["audio_start_ms"] <= 500
    assert user.bytes_per_ms == 8 and user.audio_ms > 2000


async def test_manual_commit_and_commit_empty_error() -> None:
    async with SimServer() as server, open_client(server) as client:
        await client.send(
            "input_audio_buffer.append", audio=base64.b64encode(b"\0" * 48 * 50).decode()
        )
        await client.send("input_audio_buffer.commit")
        error = (await client.recv())["error"]
        assert error["code"] == "input_audio_buffer_commit_empty"
        assert error["message"] == (
            "Error committing input audio buffer: buffer too small. Expected at least 100ms of "
            "audio, but buffer only has 50.00ms of audio."
        )
        await client.send(
            "input_audio_buffer.append", audio=base64.b64encode(b"\0" * 48 * 100).decode()
        )
        await client.send("input_audio_buffer.commit")
        committed = await client.recv()
        assert committed["type"] == "input_audio_buffer.committed"
        await client.until("conversation.item.done")
        await client.send("input_audio_buffer.clear")
        assert (await client.recv())["type"] == "input_audio_buffer.cleared"
        assert client.of_type("response.created") == []  # commit does not answer
        assert server.sessions[0].conversation.items[0].audio_ms == 150


async def test_semantic_vad_uses_the_energy_detector() -> None:
    samples, speech_end_ms = _caller_audio(lead_ms=400, tail_ms=1500)
    async with (
        SimServer(scenario={"responses": ["Okay."]}) as server,
        open_client(server, manual_turns=False) as client,
    ):
        await client.send(
            "session.update",
            session={
                "type": "realtime",
                "audio": {
                    "input": {"turn_detection": {"type": "semantic_vad", "eagerness": "low"}}
                },
            },
        )
        updated = await client.until("session.updated")
        assert updated["session"]["audio"]["input"]["turn_detection"] == {
            "type": "semantic_vad",
            "eagerness": "low",
            "create_response": True,
            "interrupt_response": True,
        }
        await _append(client, samples.tobytes(), 960)
        stopped = await client.until("input_audio_buffer.speech_stopped")
        await client.until("response.done")
        assert server.sessions[0].conversation.items[-1].text == "Okay."
    # eagerness low waits 1000 ms of silence before ending the turn
    assert abs(stopped["audio_end_ms"] - (400 + speech_end_ms + 1000)) <= 40


async def test_idle_timeout_triggers_commit_and_response() -> None:
    scenario = {"responses": ["First answer.", "Are you still there?"]}
    async with (
        SimServer(scenario=scenario) as server,
        open_client(server, manual_turns=False) as client,
    ):
        await client.send(
            "session.update",
            session={
                "type": "realtime",
                "output_modalities": ["text"],  # no audio to wait for: idle = the timeout only
                "audio": {
                    "input": {"turn_detection": {"type": "server_vad", "idle_timeout_ms": 50}}
                },
            },
        )
        await client.until("session.updated")
        await client.send("input_audio_buffer.append", audio=base64.b64encode(bytes(4800)).decode())
        await client.send("response.create")
        await client.until("response.done")
        triggered = await client.until("input_audio_buffer.timeout_triggered")
        assert (triggered["audio_start_ms"], triggered["audio_end_ms"]) == (0, 100)
        committed = await client.until("input_audio_buffer.committed")
        assert committed["item_id"] == triggered["item_id"]
        done = await client.until("response.done")
        assert done["response"]["output"][0]["content"][0]["text"] == "Are you still there?"
        items = server.sessions[0].conversation.items
        assert [(i.role, i.audio_ms) for i in items] == [
            ("assistant", 0.0),
            ("user", 100.0),
            ("assistant", 0.0),
        ]


async def test_silence_without_speech_is_not_kept_with_server_vad() -> None:
    """Half a minute of silence on server VAD keeps only the prefix padding plus the onset
    look-back (1.3 s), as the real API keeps only padded speech; without the bound the sim
    held every appended byte (48 bytes per ms, ~29 MB per session per 10 minutes)."""
    async with (
        SimServer() as server,
        open_client(server, manual_turns=False) as client,
    ):
        await client.send("session.update", session={"type": "realtime"})
        await client.until("session.updated")
        await _append(client, bytes(48 * 30_000), 48 * 1000)  # 30 s of silence, 1 s appends
        await client.send("input_audio_buffer.commit")
        committed = await client.until("input_audio_buffer.committed")
        await client.until("conversation.item.done")
        user = server.sessions[0].conversation.items[0]
        assert (user.id, user.role) == (committed["item_id"], "user")
        assert user.audio_ms == 300 + 1000  # prefix padding + onset look-back
        assert client.of_type("input_audio_buffer.speech_started") == []
