"""The demo is a self-check: each broken promise is one named failure and exit code 1."""

from __future__ import annotations

import copy
import subprocess
import sys
from typing import Any

from cli_support import REPO

from vocalis.app.demo_run import ServerView, check

GOOD: dict[str, Any] = {
    "items": [
        {"id": "u1", "type": "message", "role": "user", "text": "Weather?"},
        {"id": "a1", "type": "message", "role": "assistant", "text": "Let me check."},
        {"id": "f1", "type": "function_call", "call_id": "c1", "name": "get_weather"},
        {"id": "o1", "type": "function_call_output", "call_id": "c1"},
        {"id": "a2", "type": "message", "role": "assistant", "text": "Sunny."},
        {"id": "u2", "type": "message", "role": "user", "text": "Weekend?"},
        {"id": "a3", "type": "message", "role": "assistant", "text": "Good question."},
        {
            "id": "a4",
            "type": "message",
            "role": "assistant",
            "text": "The weekend",
            "interrupted": True,
            "played_ms": 1700.0,
            "generated_ms": 3100.0,
        },
    ],
    "metrics": [
        {
            "response_id": "r3",
            "messages": [
                {"item_id": "a3", "played_ms": 840.0, "playout": "full"},
                {"item_id": "a4", "played_ms": 1700.0, "playout": "partial"},
                {"item_id": "a5", "played_ms": 0.0, "playout": "skipped"},
            ],
        }
    ],
}
SERVER = ServerView([{"id": "a4", "truncated_at_ms": 1700}, {"id": "a3"}])


def broken(edit: Any) -> dict[str, Any]:
    history = copy.deepcopy(GOOD)
    edit(history)
    return history


def test_a_good_conversation_passes() -> None:
    assert check(GOOD, SERVER, []) == []


def test_each_broken_promise_is_named() -> None:
    items = GOOD["items"]
    cases = {
        "the agent never called get_weather": broken(lambda h: h["items"][2].update(name="other")),
        "tool call c1 has no output in the history": broken(lambda h: h["items"].pop(3)),
        "no agent message was interrupted by the barge-in": broken(
            lambda h: h["items"][7].update(interrupted=False)
        ),
        "a4: heard 3200.0 ms is not less than generated": broken(
            lambda h: h["items"][7].update(played_ms=3200.0)
        ),
        "a5 was never played but is in the history": broken(
            lambda h: h["items"].append({**items[6], "id": "a5"})
        ),
    }
    for expected, history in cases.items():
        assert expected in check(history, SERVER, []), expected
    assert check(GOOD, SERVER, ["the agent never answered line 2"]) == [
        "the agent never answered line 2"
    ]


def test_the_server_side_must_match_what_was_heard() -> None:
    assert check(GOOD, ServerView([{"id": "a4"}]), []) == ["a4 was not truncated on the server"]
    off = ServerView([{"id": "a4", "truncated_at_ms": 1500}])
    assert check(GOOD, off, []) == ["a4: server truncated at 1500 ms, caller heard 1700 ms"]
    kept = ServerView([{"id": "a4", "truncated_at_ms": 1700}, {"id": "a5"}])
    assert check(GOOD, kept, []) == ["a5 was never played but the server still has it"]


def test_a_demo_that_cannot_finish_exits_1_and_says_why(tmp_path: Any) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "vocalis.cli", "demo", "--out", str(tmp_path), "--max-seconds", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "✗ the demo did not finish within 1 s" in result.stdout
    assert "demo failed" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
