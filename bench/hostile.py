"""Hostile providers (OpenAI Realtime and Gemini Live protocols), for the attacks of #14.

Each does just enough of its protocol for a session to start (OpenAI: `session.created`, an
answer to every `session.update`; Gemini: `setupComplete`), then runs one attack: a flood of
caller-transcript deltas (each re-emitted by the client as the whole text so far), a
never-ending agent transcript, one huge audio delta, audio forever, or many empty items never
announced. Loopback only; used by tests/security (small, bounded sizes) and by
`python -m bench.attacks` (the sizes of the red-team report, with RSS measured).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from vocalis.providers.limits import ProviderLimits
from vocalis.providers.openai.realtime import OpenAIRealtimeModel

Send = Callable[[dict[str, Any]], Awaitable[None]]
Attack = Callable[[Send], Awaitable[None]]


@dataclass
class Flood:
    """How much an attack sends (events and the size of each)."""

    events: int = 20_000
    chunk_chars: int = 200


def _user_item(item_id: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "role": "user",
        "status": "completed",
        "content": [{"type": "input_audio", "transcript": None}],
    }


async def _agent_message(send: Send) -> None:
    """A response with one assistant message item (what the agent-side attacks fill)."""
    response = {"id": "resp_1", "object": "realtime.response", "status": "in_progress"}
    await send({"type": "response.created", "response": response})
    item = {"id": "item_a1", "type": "message", "role": "assistant", "content": []}
    await send({"type": "response.output_item.added", "response_id": "resp_1", "item": item})


def transcript_deltas(flood: Flood) -> Attack:
    """Item 1: one caller item whose transcription never ends (`flood.events` deltas)."""

    async def attack(send: Send) -> None:
        await send({"type": "input_audio_buffer.committed", "item_id": "item_u1"})
        await send({"type": "conversation.item.added", "item": _user_item("item_u1")})
        delta = "x" * (flood.chunk_chars - 1) + " "
        for _ in range(flood.events):
            await send(
                {
                    "type": "conversation.item.input_audio_transcription.delta",
                    "item_id": "item_u1",
                    "content_index": 0,
                    "delta": delta,
                }
            )

    return attack


def agent_text(flood: Flood) -> Attack:
    """Item 1: an agent message whose transcript never ends."""

    async def attack(send: Send) -> None:
        await _agent_message(send)
        delta = "word " * (flood.chunk_chars // 5)
        for _ in range(flood.events):
            await send(
                {
                    "type": "response.output_audio_transcript.delta",
                    "response_id": "resp_1",
                    "item_id": "item_a1",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": delta,
                }
            )

    return attack


def huge_audio(seconds: float) -> Attack:
    """Item 1: one agent audio delta of `seconds` of audio."""

    async def attack(send: Send) -> None:
        await _agent_message(send)
        pcm = bytes(int(seconds * 24000) * 2)
        await send(
            {
                "type": "response.output_audio.delta",
                "response_id": "resp_1",
                "item_id": "item_a1",
                "output_index": 0,
                "content_index": 0,
                "delta": base64.b64encode(pcm).decode(),
            }
        )

    return attack


def empty_items(count: int) -> Attack:
    """`count` items that no text or audio bound sees, for ids the provider never announced:
    a one-character agent text delta for each of `count` // 2 output items (one response,
    never created or ended) and an empty final transcript for each of the rest (caller items
    never committed). Each would become one item of the call's history."""

    async def attack(send: Send) -> None:
        for n in range(count):
            if n % 2 == 0:
                event = {
                    "type": "response.output_text.delta",
                    "response_id": "resp_x",
                    "item_id": f"item_o{n}",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": "a",
                }
            else:
                event = {
                    "type": "conversation.item.input_audio_transcription.completed",
                    "item_id": f"item_c{n}",
                    "content_index": 0,
                    "transcript": "",
                }
            await send(event)

    return attack


def empty_responses(count: int, pace_s: float = 0.0) -> Attack:
    """`count` responses without output: `response.created` then `response.done` (completed,
    no items), waiting `pace_s` after each. No text, audio or item bound sees one; each still
    becomes a settled response of the call (its metrics, its records)."""

    async def attack(send: Send) -> None:
        for n in range(count):
            response = {"id": f"resp_{n}", "object": "realtime.response", "output": []}
            await send(
                {"type": "response.created", "response": {**response, "status": "in_progress"}}
            )
            await send({"type": "response.done", "response": {**response, "status": "completed"}})
            if pace_s:
                await asyncio.sleep(pace_s)

    return attack


async def _stop(attacking: asyncio.Future[None] | None) -> None:
    """The client went away: the attack stops with it."""
    if attacking is not None:
        attacking.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
            await attacking


def hostile_client(url: str, limits: ProviderLimits | None = None) -> OpenAIRealtimeModel:
    """The real OpenAI client pointed at a `HostileProvider`'s `url` (no reconnects: the
    attack is one connection)."""
    return OpenAIRealtimeModel(
        api_key="sk-test-hostile-0123456789",
        base_url=url.removesuffix("/realtime"),
        limits=limits or ProviderLimits(),
        reconnect=False,
    )


class HostileProvider:
    """`async with HostileProvider(attack) as url:` — a realtime endpoint that attacks."""

    def __init__(self, attack: Attack, *, start_on: str = "session.update") -> None:
        """The attack starts when the client first sends a `start_on` event (a test that
        must hold the session before the attack asks for it with e.g. `response.create`)."""
        self.attack = attack
        self.start_on = start_on
        self.client_events: list[str] = []
        self.audio_appended_bytes = 0
        self.attack_done = asyncio.Event()

    async def _handle(self, ws: ServerConnection) -> None:
        async def send(event: dict[str, Any]) -> None:
            await ws.send(json.dumps(event))

        session = {"type": "realtime", "object": "realtime.session", "id": "sess_hostile"}
        await send({"type": "session.created", "session": session})
        attacking: asyncio.Future[None] | None = None
        try:
            async for raw in ws:
                event = json.loads(raw)
                kind = event.get("type")
                if kind == "input_audio_buffer.append":
                    self.audio_appended_bytes += len(event.get("audio", "")) * 3 // 4
                else:
                    self.client_events.append(str(kind))
                if kind == "session.update":
                    merged = {**session, **(event.get("session") or {})}
                    await send({"type": "session.updated", "event_id": "e1", "session": merged})
                if kind == self.start_on and attacking is None:  # after its answer, if any
                    attacking = asyncio.create_task(self._run(send))
        except ConnectionClosed:
            pass
        finally:
            await _stop(attacking)

    async def _run(self, send: Send) -> None:
        try:
            await self.attack(send)
        finally:
            self.attack_done.set()

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        async with serve(self._handle, "127.0.0.1", 0, max_size=None) as server:
            port = server.sockets[0].getsockname()[1]
            yield f"ws://127.0.0.1:{port}/v1/realtime"


# --------------------------------------------------------------------------- Gemini Live


def gemini_empty_items(count: int, pace_s: float = 0.0) -> Attack:
    """Gemini Live: `count` items no text or audio bound sees — alternately a caller turn (one
    transcription character) and a model turn (one text character, complete at once); with
    `pace_s`, that long before each model turn (so the client's checkpoints see each one)."""

    async def attack(send: Send) -> None:
        for n in range(count):
            if n % 2 == 0:
                content: dict[str, Any] = {"inputTranscription": {"text": "h"}}
            else:
                content = {"modelTurn": {"parts": [{"text": "a"}]}, "turnComplete": True}
                if pace_s:
                    await asyncio.sleep(pace_s)
            await send({"serverContent": content})

    return attack


class HostileGemini:
    """`async with HostileGemini(attack).serving() as base_url:` — a Gemini Live endpoint
    that answers the setup, then attacks (any path: the client's URL names the service) — on
    every connection, so a client that re-seeds or resumes gets the attack again."""

    def __init__(self, attack: Attack) -> None:
        self.attack = attack
        self.attack_done = asyncio.Event()
        # How each connection ended, as this side saw it (1000: the client's close was
        # answered; 1006: the client dropped the socket without one), and a wake-up per end.
        self.close_codes: list[int | None] = []
        self.connection_ended = asyncio.Event()
        self.connections = 0
        self.connection_opened = asyncio.Event()

    async def _handle(self, ws: ServerConnection) -> None:
        async def send(event: dict[str, Any]) -> None:
            await ws.send(json.dumps(event))

        attacking: asyncio.Future[None] | None = None
        self.connections += 1
        self.connection_opened.set()
        try:
            await ws.recv()  # the setup
            await send({"setupComplete": {}})
            attacking = asyncio.ensure_future(self.attack(send))
            attacking.add_done_callback(lambda _: self.attack_done.set())
            async for _ in ws:  # caller audio and turns: read (a full socket would stall the
                pass  # client), ignored; the loop ends when the client closes
        except ConnectionClosed:
            pass
        finally:
            await _stop(attacking)
            await ws.wait_closed()
            self.close_codes.append(ws.close_code)
            self.connection_ended.set()

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[str]:
        async with serve(self._handle, "127.0.0.1", 0, max_size=None) as server:
            port = server.sockets[0].getsockname()[1]
            yield f"ws://127.0.0.1:{port}"
