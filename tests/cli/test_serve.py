"""`vocalis serve` as a user starts it: the playground page is token-protected and a phone call
through the Twilio endpoint (a fake Twilio playing the phone side in real time) leaves a
history with the tool call and the answer."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
from websockets.asyncio.client import ClientConnection, connect

from serve_support import read_until, start_serve
from vocalis.audio.espeak import synthesize
from vocalis.audio.g711 import ulaw_encode

SID = "MZ00112233445566778899"


async def phone_call(url: str) -> list[str]:
    """Say a question at real pace, then play whatever the agent sends in real time."""
    events: list[str] = []
    async with connect(url) as ws:
        queue: list[tuple[str, bytes | str]] = []

        async def reader(ws: ClientConnection) -> None:
            async for raw in ws:
                msg = json.loads(raw)
                events.append(msg["event"])
                if msg["event"] == "media":
                    queue.append(("media", base64.b64decode(msg["media"]["payload"])))
                elif msg["event"] == "mark":
                    queue.append(("mark", msg["mark"]["name"]))
                elif msg["event"] == "clear":
                    queue.clear()

        async def player() -> None:
            # The phone: 20 ms of audio per 20 ms; a mark is echoed once the audio before it
            # has played.
            while True:
                budget = 160
                while queue and budget:
                    kind, data = queue[0]
                    if kind == "mark":
                        queue.pop(0)
                        mark = {"event": "mark", "streamSid": SID, "mark": {"name": data}}
                        await ws.send(json.dumps(mark))
                        continue
                    assert isinstance(data, bytes)
                    take = min(budget, len(data))
                    budget -= take
                    if take == len(data):
                        queue.pop(0)
                    else:
                        queue[0] = ("media", data[take:])
                await asyncio.sleep(0.02)

        read_task = asyncio.create_task(reader(ws))
        play_task = asyncio.create_task(player())
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1"}))
        start = {
            "streamSid": SID,
            "accountSid": "AC1",
            "callSid": "CA1",
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        }
        await ws.send(json.dumps({"event": "start", "streamSid": SID, "start": start}))
        speech = synthesize("What is the weather in Paris?", voice="en-us+f3", sample_rate=8000)
        audio = np.concatenate([speech.samples, np.zeros(8000 * 9, np.int16)])
        payload = ulaw_encode(audio)
        for k, offset in enumerate(range(0, len(payload), 160)):
            media = {"track": "inbound", "chunk": str(k + 1), "timestamp": str(k * 20)}
            media["payload"] = base64.b64encode(payload[offset : offset + 160]).decode()
            await ws.send(json.dumps({"event": "media", "streamSid": SID, "media": media}))
            await asyncio.sleep(0.02)
        await ws.send(json.dumps({"event": "stop", "streamSid": SID, "stop": {}}))
        play_task.cancel()
        read_task.cancel()
        await asyncio.gather(play_task, read_task, return_exceptions=True)
    return events


def test_serve_playground_and_a_twilio_call(tmp_path: Path) -> None:
    proc = start_serve(
        "examples/assistant_with_tools.py:agent",
        "--playground",
        "--twilio",
        "--port",
        "0",
        "--scenario",
        "examples/scenarios/preamble_tool_answer.yaml",
        "--out",
        str(tmp_path),
        env={"COLUMNS": "200"},
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        page_url = read_until(proc.stdout, r"playground: open (\S+)", lines).group(1)
        twilio_url = read_until(proc.stdout, r'Stream url="(\S+)"', lines).group(1)
        read_until(proc.stdout, r"Ctrl-C to stop", lines)

        with urllib.request.urlopen(page_url, timeout=10) as response:
            assert response.status == 200
            assert b"<html" in response.read().lower()
        try:
            urllib.request.urlopen(page_url.split("?")[0], timeout=10)
            raise AssertionError("the page must require the token")
        except urllib.error.HTTPError as exc:
            assert exc.code == 403

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
    printed = "".join(lines)
    assert "call 1 connected (twilio)" in printed
    assert "get_weather" in printed
    items = json.loads((tmp_path / "call-1" / "history.json").read_text())["items"]
    assert [i["type"] for i in items] == [
        "message",
        "message",
        "function_call",
        "function_call_output",
        "message",
    ]
    assert "sunny" in items[-1]["text"] and items[-1]["played_ms"] > 0
    assert (tmp_path / "call-1" / "timeline.html").is_file()
