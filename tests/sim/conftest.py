"""A plain ``websockets`` client for driving the simulator in tests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from openai.types.realtime import RealtimeFunctionToolParam
from websockets.asyncio.client import ClientConnection, connect

from vocalis.sim.server import SimServer

AUDIO_DELTAS = ("response.output_audio.delta", "response.output_audio_transcript.delta")


class Client:
    """Records every received event; ``until`` reads up to a matching one."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.raw: list[str] = []

    async def send(self, event_type: str, **fields: Any) -> None:
        await self.ws.send(json.dumps({"type": event_type, **fields}))

    async def recv(self) -> dict[str, Any]:
        frame = await self.ws.recv()
        assert isinstance(frame, str)
        try:
            event: dict[str, Any] = json.loads(frame)
        except json.JSONDecodeError:
            self.raw.append(frame)
            event = {"type": "<malformed>", "raw": frame}
        self.events.append(event)
        return event

    async def until(
        self, event_type: str, predicate: Callable[[dict[str, Any]], bool] | None = None
    ) -> dict[str, Any]:
        while True:
            event = await self.recv()
            if event["type"] == event_type and (predicate is None or predicate(event)):
                return event

    def types(self, *, start: int = 0, collapse: bool = True) -> list[str]:
        """Event types from index ``start``; runs of the same delta type collapse to one."""
        out: list[str] = []
        for event in self.events[start:]:
            t = event["type"]
            if collapse and out and t == out[-1] and t.endswith(".delta"):
                continue
            out.append(t)
        return out

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == event_type]


@asynccontextmanager
async def open_client(
    server: SimServer, *, headers: dict[str, str] | None = None, manual_turns: bool = True
) -> AsyncIterator[Client]:
    """Connect, read ``session.created`` and (by default) switch turn detection off."""
    async with connect(
        server.url + "?model=gpt-realtime",
        additional_headers=headers or {"Authorization": "Bearer test"},
        max_size=None,
    ) as ws:
        client = Client(ws)
        await client.until("session.created")
        if manual_turns:
            await client.send(
                "session.update",
                session={"type": "realtime", "audio": {"input": {"turn_detection": None}}},
            )
            await client.until("session.updated")
        yield client


# Typed with the OpenAI SDK's own tool shape: the sim must accept what the SDK sends.
WEATHER_TOOL: RealtimeFunctionToolParam = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


async def add_user_text(client: Client, text: str) -> dict[str, Any]:
    await client.send(
        "conversation.item.create",
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]},
    )
    return await client.until("conversation.item.done")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Simulator tests are fast; a hang should fail in seconds, not minutes."""
    for item in items:
        if "tests/sim/" in str(item.path) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(30))
