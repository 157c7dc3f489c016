"""Exact GA event sequences of multi-item responses, text mode, and the speech itself."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import pytest

from vocalis.sim.server import SimServer
from vocalis.sim.voice import OPENAI_VOICES, speak

from .conftest import WEATHER_TOOL, Client, add_user_text, open_client

PREAMBLE = "Let me check the weather for you."
ANSWER = "I will tell you in a moment."


def _scenario(ordering: str) -> dict[str, Any]:
    return {
        "seed": 3,
        "responses": [
            {
                "ordering": ordering,
                "items": [
                    {"say": PREAMBLE, "phase": "commentary"},
                    {"say": ANSWER, "phase": "final_answer"},
                    {"call": "get_weather", "arguments": {"city": "Paris"}},
                ],
            }
        ],
    }


def _skeleton(client: Client, start: int) -> list[tuple[str, int | None]]:
    """(type, output index) of every non-delta event; conversation.item.* mapped by item id."""
    index_of: dict[str, int] = {}
    out: list[tuple[str, int | None]] = []
    for event in client.events[start:]:
        kind = event["type"]
        if kind == "response.output_item.added":
            index_of[event["item"]["id"]] = event["output_index"]
        if kind.endswith(".delta"):
            continue
        if kind.startswith("conversation.item."):
            out.append((kind, index_of.get(event["item"]["id"])))
        else:
            out.append((kind, event.get("output_index")))
    return out


def _message(i: int) -> list[tuple[str, int | None]]:
    return [
        ("response.output_audio.done", i),
        ("response.output_audio_transcript.done", i),
        ("response.content_part.done", i),
        ("response.output_item.done", i),
        ("conversation.item.done", i),
    ]


def _head(i: int, *, message: bool = True) -> list[tuple[str, int | None]]:
    head: list[tuple[str, int | None]] = [
        ("response.output_item.added", i),
        ("conversation.item.added", i),
    ]
    return [*head, ("response.content_part.added", i)] if message else head


CALL_TAIL = [
    ("response.function_call_arguments.done", 2),
    ("response.output_item.done", 2),
    ("conversation.item.done", 2),
]


async def _run(ordering: str) -> Client:
    async with SimServer(scenario=_scenario(ordering)) as server, open_client(server) as client:
        await client.send("session.update", session={"type": "realtime", "tools": [WEATHER_TOOL]})
        await client.until("session.updated")
        await add_user_text(client, "What's the weather in Paris?")
        await client.send("response.create")
        await client.until("response.done")
        return client


async def test_sequential_two_messages_and_call_exact_order() -> None:
    client = await _run("sequential")
    start = next(i for i, e in enumerate(client.events) if e["type"] == "response.created")
    assert _skeleton(client, start) == [
        ("response.created", None),
        ("rate_limits.updated", None),
        *_head(0),
        *_message(0),
        *_head(1),
        *_message(1),
        *_head(2, message=False),
        *CALL_TAIL,
        ("response.done", None),
    ]


async def test_overlapping_two_messages_and_call_exact_order() -> None:
    client = await _run("overlapping")
    start = next(i for i, e in enumerate(client.events) if e["type"] == "response.created")
    assert _skeleton(client, start) == [
        ("response.created", None),
        ("rate_limits.updated", None),
        *_head(0),
        *_head(1),
        *_message(0),
        *_head(2, message=False),
        *_message(1),
        *CALL_TAIL,
        ("response.done", None),
    ]
    # the second item's audio starts before the first item's audio.done
    kinds = [(e["type"], e.get("output_index")) for e in client.events]
    first_b_audio = kinds.index(("response.output_audio.delta", 1))
    a_done = kinds.index(("response.output_audio.done", 0))
    assert first_b_audio < a_done
    # deltas of A all precede B's output_item.added; audio deltas are in playback order
    assert max(i for i, k in enumerate(kinds) if k == ("response.output_audio.delta", 0)) < (
        kinds.index(("response.output_item.added", 1))
    )


@pytest.mark.parametrize("ordering", ["sequential", "overlapping"])
async def test_items_fields_done_and_usage(ordering: str) -> None:
    client = await _run(ordering)
    done = client.of_type("response.done")[-1]["response"]
    assert done["status"] == "completed" and done["status_details"] is None
    out = done["output"]
    assert [o["type"] for o in out] == ["message", "message", "function_call"]
    assert out[0]["content"] == [{"type": "output_audio", "transcript": PREAMBLE}]
    assert out[0]["phase"] == "commentary" and out[1]["phase"] == "final_answer"
    assert json.loads(out[2]["arguments"]) == {"city": "Paris"}
    assert out[2]["name"] == "get_weather" and out[2]["call_id"].startswith("call_")
    assert all(o["status"] == "completed" for o in out)
    usage = done["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] > 0
    added = client.of_type("conversation.item.added")
    assistant = [e for e in added if e["item"].get("role") == "assistant"]
    assert all(
        e["item"]["status"] == "in_progress" and e["item"]["content"] == [] for e in assistant
    )
    args = "".join(e["delta"] for e in client.of_type("response.function_call_arguments.delta"))
    assert json.loads(args) == {"city": "Paris"}
    parts = client.of_type("response.content_part.added")
    assert all(p["part"] == {"type": "audio", "transcript": ""} for p in parts)


async def test_transcript_deltas_precede_their_audio_and_concatenate() -> None:
    client = await _run("sequential")
    speech = speak(PREAMBLE, OPENAI_VOICES["marin"], "audio/pcm", 1.0, 0)
    words = speech.words
    sent_bytes = 0
    text = ""
    word_index = 0
    for event in client.events:
        if event.get("output_index") != 0:
            continue
        if event["type"] == "response.output_audio_transcript.delta":
            text += event["delta"]
            assert event["delta"] == words[word_index].text
            word_index += 1
        elif event["type"] == "response.output_audio.delta":
            chunk = len(base64.b64decode(event["delta"]))
            end_ms = (sent_bytes + chunk) / 48
            # every word whose audio starts inside this chunk was announced already
            started = [w for w in words if w.start_ms < end_ms]
            assert word_index >= len(started)
            sent_bytes += chunk
    assert text == PREAMBLE
    done = client.of_type("response.output_audio_transcript.done")[0]
    assert done["transcript"] == PREAMBLE


async def test_speech_is_real_and_matches_word_timings() -> None:
    client = await _run("sequential")
    chunks = [
        base64.b64decode(e["delta"])
        for e in client.of_type("response.output_audio.delta")
        if e["output_index"] == 0
    ]
    sizes_ms = [len(c) / 48 for c in chunks]
    assert all(20 <= s <= 200 for s in sizes_ms[:-1]) and len(set(sizes_ms)) > 3
    pcm = np.frombuffer(b"".join(chunks), dtype="<i2").astype(np.float64)
    duration_ms = len(pcm) / 24
    rms_db = 20 * np.log10(np.sqrt(np.mean(pcm**2)) / 32768)
    assert rms_db > -35, "speech must not be silence"
    speech = speak(PREAMBLE, OPENAI_VOICES["marin"], "audio/pcm", 1.0, 0)
    assert duration_ms == speech.duration_ms
    last = speech.words[-1]
    assert 0 < last.end_ms <= duration_ms and duration_ms - last.end_ms < 150
    # each word's span is audible (not silence)
    for word in speech.words:
        segment = pcm[int(word.start_ms * 24) : int(word.end_ms * 24)]
        assert segment.size > 0 and np.sqrt(np.mean(segment**2)) > 100, word


async def test_text_only_modality() -> None:
    scenario = {"responses": [{"say": "Plain text answer."}]}
    async with SimServer(scenario=scenario) as server, open_client(server) as client:
        await client.send(
            "session.update", session={"type": "realtime", "output_modalities": ["text"]}
        )
        await client.until("session.updated")
        await client.send("response.create")
        done = await client.until("response.done")
    assert "response.output_audio.delta" not in client.types()
    deltas = "".join(e["delta"] for e in client.of_type("response.output_text.delta"))
    assert deltas == "Plain text answer."
    assert client.of_type("response.content_part.added")[0]["part"] == {"type": "text", "text": ""}
    assert client.of_type("response.output_text.done")[0]["text"] == "Plain text answer."
    assert done["response"]["output"][0]["content"] == [
        {"type": "output_text", "text": "Plain text answer."}
    ]
    assert done["response"]["output_modalities"] == ["text"]


async def test_g711_output_format() -> None:
    async with SimServer(scenario={"responses": ["Hello there."]}) as server:
        async with open_client(server) as client:
            await client.send(
                "session.update",
                session={
                    "type": "realtime",
                    "audio": {"output": {"format": {"type": "audio/pcmu"}}},
                },
            )
            await client.until("session.updated")
            await client.send("response.create")
            await client.until("response.done")
        item = (await server.wait_for_session()).conversation.items[0]
    audio = b"".join(
        base64.b64decode(e["delta"]) for e in client.of_type("response.output_audio.delta")
    )
    assert item.bytes_per_ms == 8 and len(audio) == len(item.audio)
    assert item.audio_ms == pytest.approx(
        speak("Hello there.", OPENAI_VOICES["marin"], "audio/pcmu", 1.0, 0).duration_ms
    )


async def test_tool_followup_template_and_skipped_undeclared_tool() -> None:
    scenario = {
        "responses": [
            {
                "items": [
                    {"say": "One moment."},
                    {"call": "get_weather", "arguments": {"city": "Oslo"}},
                ]
            },
            {"say": "It is {result[temp_c]} degrees, raw {output}."},
        ]
    }
    async with SimServer(scenario=scenario) as server, open_client(server) as client:
        # no tools declared yet: the call is skipped
        await client.send("response.create")
        done = await client.until("response.done")
        assert [o["type"] for o in done["response"]["output"]] == ["message"]
        assert any("skipped call 'get_weather'" in n for n in server.sessions[0].notes)


async def test_tool_output_fills_the_next_scripted_answer() -> None:
    scenario = {
        "responses": [
            {"items": [{"call": "get_weather", "arguments": {"city": "Oslo"}}]},
            {"say": "It is {result[temp_c]} degrees, raw {output}."},
        ]
    }
    async with SimServer(scenario=scenario) as server, open_client(server) as client:
        await client.send("session.update", session={"type": "realtime", "tools": [WEATHER_TOOL]})
        await client.until("session.updated")
        await client.send("response.create")
        done = await client.until("response.done")
        call = done["response"]["output"][0]
        await client.send(
            "conversation.item.create",
            item={
                "type": "function_call_output",
                "call_id": call["call_id"],
                "output": '{"temp_c": 7}',
            },
        )
        await client.until("conversation.item.done")
        await client.send("response.create")
        done = await client.until("response.done")
    transcript = done["response"]["output"][0]["content"][0]["transcript"]
    assert transcript == 'It is 7 degrees, raw {"temp_c": 7}.'


async def test_leading_silence_comes_first_in_chunks_of_its_own() -> None:
    """S26: the first audible delta is preceded by exactly ``leading_silence_ms`` of silence."""
    plain = speak(ANSWER, OPENAI_VOICES["marin"], "audio/pcm", 1.0, 0)
    scenario = {"responses": [{"items": [{"say": ANSWER, "leading_silence_ms": 100}]}]}
    async with SimServer(scenario=scenario) as server, open_client(server) as client:
        await client.send("response.create")
        await client.until("response.done")
    chunks = [base64.b64decode(e["delta"]) for e in client.of_type("response.output_audio.delta")]
    silent = 0
    for chunk in chunks:
        if any(chunk):
            break
        silent += len(chunk)
    assert silent == 100 * 48  # a chunk boundary exactly where the speech starts
    assert any(chunks[len([c for c in chunks if not any(c)])][: 20 * 48])  # audible at once
    assert sum(map(len, chunks)) == len(plain.audio) + 100 * 48
    # Word timings count from the item's start (truncation keeps words by them).
    item = server.sessions[0].conversation.items[0]
    assert item.words[0].start_ms == plain.words[0].start_ms + 100
    assert item.text == ANSWER and item.audio_ms == plain.duration_ms + 100
