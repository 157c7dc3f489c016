"""`vocalis serve --provider gemini --twilio`: a phone call (8 kHz µ-law, resampled to Gemini's
16 kHz in and from its 24 kHz out) on the embedded sim speaking Gemini leaves a history with
the tool call and the answer."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

from test_serve import phone_call

from serve_support import read_until, start_serve


def test_serve_a_twilio_call_on_gemini(tmp_path: Path) -> None:
    proc = start_serve(
        "examples/assistant_with_tools.py:agent",
        "--provider", "gemini", "--twilio", "--port", "0",
        "--scenario", "examples/scenarios/preamble_tool_answer.yaml",
        "--out", str(tmp_path),
        env={"COLUMNS": "200", "GEMINI_API_KEY": "", "GOOGLE_API_KEY": ""},
    )  # fmt: skip
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        read_until(proc.stdout, r"Gemini Live", lines)
        twilio_url = read_until(proc.stdout, r'Stream url="(\S+)"', lines).group(1)
        read_until(proc.stdout, r"Ctrl-C to stop", lines)
        events = asyncio.run(phone_call(twilio_url))
        assert "media" in events and "mark" in events
        read_until(proc.stdout, r"call 1.* ended; wrote", lines)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        finally:
            proc.kill()
    assert proc.returncode == 0, "".join(lines)
    items = json.loads((tmp_path / "call-1" / "history.json").read_text())["items"]
    kinds = [i["type"] for i in items]
    assert kinds.count("function_call") == 1 and kinds.count("function_call_output") == 1
    answer = [i for i in items if i["type"] == "message" and i["role"] == "assistant"][-1]
    assert "sunny" in answer["text"] and answer["played_ms"] > 0
