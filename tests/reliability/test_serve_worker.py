"""`vocalis serve` as a fleet member, as an operator runs it (a real process, real signals).

S29 admission with `--max-sessions 1` (two phone calls 100 ms apart: exactly one accepted,
the other refused with a reason), health and metrics on the admin port, the connection-attempt
rate limit, then SIGTERM: new calls are refused while the running call goes on — the caller
still gets answers — and when it hangs up, its history is written and the process exits 0.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from serve_support import kill_if_running, read_until, start_serve
from vocalis.audio.espeak import synthesize
from vocalis.audio.g711 import ulaw_encode

SID = "MZ00112233445566778899"

pytestmark = pytest.mark.timeout(180)


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
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            message = json.loads(raw)
            if message["event"] == "media":
                self.media += 1
            elif message["event"] == "mark":  # played at once: echo every mark
                await self.ws.send(raw)

    async def start(self) -> None:
        fmt = {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
        start = {"streamSid": SID, "callSid": "CA1", "tracks": ["inbound"], "mediaFormat": fmt}
        await self.ws.send(json.dumps({"event": "start", "streamSid": SID, "start": start}))

    async def say(self, text: str) -> None:
        clip = synthesize(text, sample_rate=8000)
        audio = np.concatenate([np.asarray(clip.samples, np.int16), np.zeros(8000, np.int16)])
        payload = ulaw_encode(audio)
        for offset in range(0, len(payload), 160):
            chunk = base64.b64encode(payload[offset : offset + 160]).decode()
            media = {"track": "inbound", "payload": chunk}
            await self.ws.send(json.dumps({"event": "media", "streamSid": SID, "media": media}))
            await asyncio.sleep(0.01)  # 2x real time: inside the pacing budget (2 s slack)

    async def answered(self, within: float = 30.0) -> None:
        """The agent's voice comes back (media frames)."""
        seen = self.media
        async with asyncio.timeout(within):
            while self.media < seen + 10:  # noqa: ASYNC110 - counted by the reader task
                await asyncio.sleep(0.02)

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


def test_serve_admission_and_sigterm_drain(tmp_path: Path) -> None:
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
        str(tmp_path),
        env={"COLUMNS": "200"},
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        stream_url = read_until(proc.stdout, r'Stream url="(\S+)"', lines).group(1)
        admin = read_until(proc.stdout, r"admin: (http://\S+)/metrics", lines).group(1)
        read_until(proc.stdout, r"at most 1 calls at once", lines)

        async def scenario() -> None:
            async with connect(stream_url) as ws:
                phone = Phone(ws)
                await phone.start()
                await phone.say("Hello, can you hear me?")
                await phone.answered()

                # S29: a second call 100 ms later is refused, clearly.
                await asyncio.sleep(0.1)
                response = await refused(stream_url)
                assert response.status_code == 503
                assert response.headers["X-Vocalis-Refusal"] == "at_capacity"
                assert b"at capacity (1/1 calls)" in response.body
                status, body = await asyncio.to_thread(http_get, admin + "/healthz")
                assert status == 503 and '"full"' in body
                _, text = await asyncio.to_thread(http_get, admin + "/metrics")
                assert metric(text, "vocalis_live_sessions") == 1
                assert metric(text, 'vocalis_sessions_refused_total{reason="at_capacity"}') == 1

                # SIGTERM: drain. New calls are refused; the running call goes on.
                proc.send_signal(signal.SIGTERM)
                await asyncio.to_thread(read_until, proc.stdout, r"draining", lines)
                response = await refused(stream_url)
                assert response.status_code == 503
                assert response.headers["X-Vocalis-Refusal"] == "draining"
                status, body = await asyncio.to_thread(http_get, admin + "/healthz")
                assert status == 503 and '"draining"' in body
                await phone.say("Are you still there?")
                await phone.answered()
                assert proc.poll() is None  # still serving the running call
                await phone.hang_up()

        asyncio.run(scenario())
        read_until(proc.stdout, r"call 1.* ended; wrote", lines)
        read_until(proc.stdout, r"stopped", lines)
        proc.wait(timeout=30)
    finally:
        kill_if_running(proc)
    assert proc.returncode == 0, "".join(lines)
    items = json.loads((tmp_path / "call-1" / "history.json").read_text())["items"]
    answers = [i for i in items if i.get("role") == "assistant"]
    assert len(answers) >= 2 and all(a["played_ms"] > 0 for a in answers[:2])
    assert not (tmp_path / "call-2").exists()  # the refused calls never started


def test_workers_share_a_token_from_the_environment() -> None:
    """Behind a load balancer every worker must accept the same Stream URL."""
    proc = start_serve(
        "examples/minimal_agent.py:agent",
        "--twilio",
        "--port",
        "0",
        env={"VOCALIS_TOKEN": "fleet-token-123456"},
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        url = read_until(proc.stdout, r'Stream url="(\S+)"', lines).group(1)
        # A shared secret from the environment is never printed (stdout is often the log).
        assert url.endswith("/twilio/<VOCALIS_TOKEN>")
        read_until(proc.stdout, r"Ctrl-C to stop", lines)
        from websockets.sync.client import connect as sync_connect

        with sync_connect(url.replace("<VOCALIS_TOKEN>", "fleet-token-123456")) as ws:
            ws.send('{"event": "connected", "protocol": "Call", "version": "1.0.0"}')
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        lines.extend(proc.stdout.readlines())
    finally:
        kill_if_running(proc)
    assert proc.returncode == 0, "".join(lines)
    assert "fleet-token-123456" not in "".join(lines)
