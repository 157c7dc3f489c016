"""`vocalis demo` and `vocalis run` as a user runs them, checked on their output files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from cli_support import CliRun, parse_timeline

from vocalis.app.reports.outputs import load_events
from vocalis.audio.wav import read_wav

FRAME_MS = 20


def history(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text())
    items: list[dict[str, Any]] = data["items"]
    for item in items:
        for key in ("id", "type", "role", "text", "interrupted", "played_ms"):
            assert key in item, f"{item.get('id')} lacks {key}"
        if item["type"] in ("function_call", "function_call_output"):
            for key in ("name", "arguments", "output"):
                assert key in item, f"{item['id']} lacks {key}"
    return items


def active_ms(channel: np.ndarray, rate: int) -> float:
    """Duration of 20 ms windows holding sound (above ±16: resampling leaves ±1 in silence)."""
    step = rate * FRAME_MS // 1000
    windows = channel[: channel.shape[0] // step * step].reshape(-1, step)
    return float(np.count_nonzero(np.abs(windows.astype(np.int32)).max(axis=1) > 16) * FRAME_MS)


def test_demo_succeeds_and_says_so(demo_run: CliRun) -> None:
    result = demo_run.result
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo passed" in result.stdout
    assert "barge-in" in result.stdout
    # The live transcript (log mode in a pipe): verdicts for every kind of message.
    assert "[interrupted at" in result.stdout
    assert "[never played]" in result.stdout
    assert "get_weather" in result.stdout


def test_demo_history_shows_tool_call_and_barge_in(demo_run: CliRun) -> None:
    items = history(demo_run.out / "history.json")
    kinds = [(i["type"], i["role"]) for i in items]
    assert kinds[:4] == [
        ("message", "user"),
        ("message", "assistant"),  # the preamble
        ("function_call", "assistant"),
        ("function_call_output", "tool"),
    ]
    call = items[2]
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"city": "Paris"}
    assert json.loads(call["output"])["sky"] == "sunny"
    answer = items[4]
    assert answer["role"] == "assistant" and "sunny" in answer["text"]
    cut = [i for i in items if i["interrupted"]]
    assert len(cut) == 1
    [message] = cut
    assert 0 < message["played_ms"] < message["generated_ms"]
    assert message["generated_text"].startswith(message["text"])
    assert len(message["text"]) < len(message["generated_text"])
    # The third message of that answer had arrived but never played: it is in neither the
    # history nor (checked by the demo itself) the server; the metrics keep its text.
    [turn] = [
        t
        for t in json.loads((demo_run.out / "history.json").read_text())["metrics"]
        if t["response_id"] == message["response_id"]
    ]
    never = [m for m in turn["messages"] if m["playout"] == "skipped"]
    assert len(never) == 1 and never[0]["played_ms"] == 0 and never[0]["generated_text"]
    assert never[0]["item_id"] not in {i["id"] for i in items}
    # After the barge-in the caller's interruption is answered.
    after = items[items.index(message) + 1 :]
    assert [i["role"] for i in after] == ["user", "assistant"]
    assert "Sunday" in after[0]["text"]


def test_demo_recording_channels(demo_run: CliRun) -> None:
    frame = read_wav(demo_run.out / "conversation.wav")
    assert frame.channels == 2
    rate = frame.sample_rate
    caller, agent = frame.samples[:, 0], frame.samples[:, 1]
    items = history(demo_run.out / "history.json")
    heard_ms = sum(i["played_ms"] for i in items if i["role"] == "assistant" and i["played_ms"])
    # The right channel holds exactly the audio that was played (frame-granular).
    assert heard_ms * 0.85 <= active_ms(agent, rate) <= heard_ms + 2 * FRAME_MS * 6
    # The caller spoke three lines.
    assert active_ms(caller, rate) > 3000
    assert frame.samples.shape[0] / rate < 60


def test_demo_events_and_timeline(demo_run: CliRun) -> None:
    events = load_events(demo_run.out / "events.jsonl")
    types = {e["type"] for e in events}
    assert {"agent_state_changed", "tool_call_started", "turn_metrics", "interrupted"} <= types
    times = [e["t"] for e in events]
    assert times == sorted(times)
    page = parse_timeline((demo_run.out / "timeline.html").read_text())
    items = history(demo_run.out / "history.json")
    messages = [i for i in items if i["type"] == "message"]
    # Every history message has its card; extra cards are only never-played messages
    # (deleted from the history, shown from the metrics).
    assert {m["id"] for m in messages} <= set(page.cards)
    extra = set(page.cards) - {m["id"] for m in messages}
    assert len(extra) == 1 and all(page.cards[card] == "never played" for card in extra)
    assert page.tool_cards == [items[2]["call_id"]]
    assert list(page.cards.values()).count("interrupted") == 1
    assert page.unclosed == [] and page.external == []


def test_run_on_a_wav(wav_run: CliRun, caller_wav: Path) -> None:
    result = wav_run.result
    assert result.returncode == 0, result.stdout + result.stderr
    items = history(wav_run.out / "history.json")
    assert [(i["type"], i["role"]) for i in items] == [
        ("message", "user"),
        ("message", "assistant"),
        ("function_call", "assistant"),
        ("function_call_output", "tool"),
        ("message", "assistant"),
    ]
    assert items[0]["text"] == "What's the weather in Paris today?"  # the scenario transcript
    assert items[1]["played_ms"] > 0 and not items[1]["interrupted"]
    assert "sunny" in items[4]["text"] and "22" in items[4]["text"]
    recording = read_wav(wav_run.out / "run.wav")
    source = read_wav(caller_wav)
    assert recording.channels == 2
    rate = recording.sample_rate
    # Left: the whole caller file (then silence until hang-up); right: what was played.
    assert recording.samples.shape[0] / rate >= source.samples.shape[0] / source.sample_rate
    caller_ms = active_ms(recording.samples[:, 0], rate)
    speech_ms = active_ms(source.samples, source.sample_rate)
    assert abs(caller_ms - speech_ms) <= 3 * FRAME_MS
    heard_ms = items[1]["played_ms"] + items[4]["played_ms"]
    assert heard_ms * 0.85 <= active_ms(recording.samples[:, 1], rate) <= heard_ms + 6 * FRAME_MS
    page = parse_timeline((wav_run.out / "timeline.html").read_text())
    assert {i["id"] for i in items if i["type"] == "message"} <= set(page.cards)
    assert load_events(wav_run.out / "events.jsonl")
