"""`vocalis serve` with a per-call agent factory: each call's agent is made from what the
transport knows about it (here the playground page's `?meta.*` metadata), and the page is told
which agent answered. Text-only calls from a WebSocket client playing the page."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import connect

from serve_support import interrupt, read_until, start_serve


async def agent_of_a_call(page_url: str, metadata: dict[str, str]) -> dict[str, Any]:
    """Open a text-only call with `metadata` and return the page's `agent` event."""
    ws_url = page_url.replace("http://", "ws://").replace("/?token=", "/ws?token=")
    origin = page_url.split("/?")[0]  # the page's own origin, as a browser sends it
    async with connect(ws_url, origin=origin) as ws:  # type: ignore[arg-type]
        hello = json.loads(await ws.recv())
        assert hello["type"] == "hello"
        await ws.send(json.dumps({"type": "ready", "output": "text", "metadata": metadata}))
        async with asyncio.timeout(15):
            async for raw in ws:
                message = json.loads(raw)
                if message.get("type") == "event" and message["kind"] == "agent":
                    await ws.send(json.dumps({"type": "hangup"}))
                    return dict(message)
    raise AssertionError("no agent event")


def test_each_call_gets_the_agent_its_metadata_selects() -> None:
    proc = start_serve("examples/multi_agent/triage.py:make_agent", "--playground", "--port", "0")
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        page_url = read_until(proc.stdout, r"playground: open (\S+)", lines).group(1)
        read_until(proc.stdout, r"Ctrl-C to stop", lines)
        vip = asyncio.run(agent_of_a_call(page_url, {"tier": "vip"}))
        regular = asyncio.run(agent_of_a_call(page_url, {}))
    finally:
        interrupt(proc)
    assert vip["name"] == "billing" and vip["tools"] == ["refund", "end_call"]
    assert regular["name"] == "triage"
    assert regular["tools"] == ["transfer_to_billing", "end_call"]
