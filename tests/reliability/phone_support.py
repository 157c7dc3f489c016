"""A fake Twilio phone, the server it calls and small HTTP helpers for the fleet tests.

Shared by test_serve_worker.py (one process) and test_serve_pool.py (`--workers N`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from serve_support import ServeOutput, kill_if_running, start_serve
from vocalis.audio.espeak import synthesize
from vocalis.audio.g711 import ulaw_encode

SID = "MZ00112233445566778899"


@dataclass(frozen=True)
class PhoneServer:
    """A running `vocalis serve --twilio`, everything it prints, and the URLs it printed."""

    proc: subprocess.Popen[str]
    output: ServeOutput
    stream_url: str
    admin: str  # http://host:port of --admin-port


def start_phone_server(out: Path, *flags: str) -> PhoneServer:
    """The minimal agent for phone calls, one call at a time (`--max-sessions 1`, with
    `flags` added), on port 0 with an admin port, its call files in `out`; returned once it
    printed its Stream URL and admin URL (the caller kills `proc` when done)."""
    proc = start_serve(
        "examples/minimal_agent.py:agent",
        "--twilio",
        "--port",
        "0",
        "--admin-port",
        "0",
        "--max-sessions",
        "1",
        "--pace",
        "4",
        "--out",
        str(out),
        *flags,
        env={"COLUMNS": "200"},
    )
    output = ServeOutput(proc)
    try:
        stream_url = output.expect(r'Stream url="(\S+)"')[0].group(1)
        admin = output.expect(r"admin: (http://\S+)/metrics")[0].group(1)
    except BaseException:
        kill_if_running(proc)
        raise
    return PhoneServer(proc, output, stream_url, admin)


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        body = error.read().decode()
        error.close()
        return error.code, body


class Phone:
    """A fake Twilio stream: start, caller audio, and what the agent sends back."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.media = 0
        self.media_at_speech_end = 0
        self._media_came = asyncio.Condition()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            if message["event"] == "media":
                self.media += 1
                async with self._media_came:
                    self._media_came.notify_all()
            elif message["event"] == "mark":  # played at once: echo every mark
                await self.ws.send(raw)

    async def start(self) -> None:
        fmt = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
        start = {"streamSid": SID, "callSid": "CA1", "tracks": ["inbound"], "mediaFormat": fmt}
        await self.ws.send(json.dumps({"event": "start", "streamSid": SID, "start": start}))

    async def say(self, text: str) -> None:
        """The caller speaks `text`, then stays silent for a second (so server VAD ends the
        turn); the agent's answer may start, or even end, while the silence is still sent."""
        clip = synthesize(text, sample_rate=8000)
        await self._send(ulaw_encode(np.asarray(clip.samples, np.int16)))
        # The answer to this turn is what arrives from here on: the speech is over, so a
        # barged-in earlier answer was cleared, and no reply can come before the speech ended.
        self.media_at_speech_end = self.media
        await self._send(ulaw_encode(np.zeros(8000, np.int16)))

    async def _send(self, payload: bytes) -> None:
        for offset in range(0, len(payload), 160):
            chunk = base64.b64encode(payload[offset : offset + 160]).decode()
            media = {"track": "inbound", "payload": chunk}
            await self.ws.send(json.dumps({"event": "media", "streamSid": SID, "media": media}))
            await asyncio.sleep(0.01)  # 2x real time: inside the pacing budget (2 s slack)

    async def answered(self, within: float = 30.0) -> None:
        """The agent's voice comes back (media frames) after the caller's last speech.

        Counted from the end of the speech, not from when `say` returned: on a starved
        machine the whole answer can arrive while the trailing silence is still being sent,
        and no frame would come after it."""
        wanted = self.media_at_speech_end + 10
        async with asyncio.timeout(within), self._media_came:
            await self._media_came.wait_for(lambda: self.media >= wanted)

    async def hang_up(self) -> None:
        await self.ws.send(json.dumps({"event": "stop", "streamSid": SID, "stop": {}}))
        await asyncio.wait_for(self.reader, 30)


async def refused(url: str) -> Any:
    with pytest.raises(InvalidStatus) as info:
        async with connect(url):
            pass
    return info.value.response


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} missing from /metrics"
    return float(match.group(1))
