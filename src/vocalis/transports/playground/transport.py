"""One browser tab = one call: the playground's `Transport` and its WebSocket protocol.

Client → server messages (validated and bounded; anything else closes the socket with 1008):
- binary: microphone PCM16 little-endian mono at the server rate (from the page's capture
  worklet, 20 ms frames; at most `MAX_AUDIO_BYTES` each);
- `{"type":"ready"}` once the page's audio graph runs (the call starts then); optional fields:
  `"output": "text"` for a text-only call (no audio either way: the session then asks the
  model for text) and `"metadata": {name: value}` (strings, at most `MAX_METADATA` pairs) that
  the application reads as `transport.metadata` (e.g. for a per-call agent);
- player reports `started` / `pos` / `done` / `cleared` (see `sink.py`);
- `{"type":"text","text":...}` typed message (≤ `MAX_TEXT_CHARS`), `{"type":"hangup"}`.

Server → client: `hello` (sample rate), segments and audio (see `sink.py`), the text sink's
`agent_text`, `verdict`, `user_transcript`, `state`, `notice`, and the application's own
events (`PlaygroundTextSink.event`: tool calls, latencies, errors, the agent's description).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import numpy as np

from vocalis.transports._source import FixedRateAudioSource
from vocalis.transports._web import (
    Outbox,
    SocketTransport,
    run_socket_call,
)
from vocalis.transports.base import CallInfo, PlayoutResult, TextSink
from vocalis.transports.pacing import AudioPacer, admit_audio
from vocalis.transports.playground.sink import PlaygroundAudioSink
from vocalis.transports.web import CallSocket
from vocalis.utils.channel import Channel
from vocalis.utils.clock import Clock, MonotonicClock

__all__ = [
    "MAX_AUDIO_BYTES",
    "MAX_TEXT_CHARS",
    "OnCall",
    "PlaygroundProtocolError",
    "PlaygroundTextSink",
    "PlaygroundTransport",
    "handle_playground",
    "page_metadata",
    "typed_message",
    "typed_text",
]

log = logging.getLogger("vocalis.transports.playground")

OnCall = Callable[["PlaygroundTransport"], Awaitable[None]]

MAX_AUDIO_BYTES = 32 * 1024  # ~680 ms at 24 kHz; the page sends 20 ms frames
MAX_TEXT_CHARS = 2000
MAX_JSON_BYTES = 16 * 1024
MAX_CLEARED_SEGMENTS = 1000
MAX_METADATA = 16
MAX_METADATA_CHARS = 200
READY_TIMEOUT_S = 30.0
_MAX_INT = 2**31


class PlaygroundProtocolError(ValueError):
    """The page sent something outside the protocol (the message says what)."""


def _int(data: dict[str, object], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _MAX_INT:
        raise PlaygroundProtocolError(f"field '{key}' must be a non-negative integer")
    return value


def typed_message(raw: str, error: type[ValueError], what: str) -> tuple[str, dict[str, object]]:
    """Decode one page message into (type, object), raising `error` outside the protocol.

    One rule for the playground socket and the WebRTC data channel, so both reject the same
    garbage with the same words; `what` names the message in the JSON error.
    """
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        # RecursionError: nested brackets beyond the decoder's depth are garbage too, not
        # a crash of the reader task.
        raise error(f"{what} is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise error("message must be a JSON object with a string 'type'")
    return data["type"], data


def typed_text(message: dict[str, object]) -> str:
    """The caller's typed message from a page's `text` message, stripped and bounded."""
    text = message.get("text")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT_CHARS:
        raise PlaygroundProtocolError(f"'text' must be 1..{MAX_TEXT_CHARS} characters")
    return text.strip()


def page_metadata(ready: dict[str, object]) -> dict[str, str]:
    """The page's `?meta.*` values from its `ready` message, bounded (shared with WebRTC)."""
    metadata = ready.get("metadata", {})
    if (
        not isinstance(metadata, dict)
        or len(metadata) > MAX_METADATA
        or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) + len(v) <= MAX_METADATA_CHARS
            for k, v in metadata.items()
        )
    ):
        raise PlaygroundProtocolError(
            f"'metadata' must map at most {MAX_METADATA} names to strings "
            f"(≤ {MAX_METADATA_CHARS} characters a pair)"
        )
    return dict(metadata)


class PlaygroundAudioSource(FixedRateAudioSource):
    """Microphone frames from the page (already at the server rate), converted at the edge."""

    def feed(self, pcm: bytes) -> None:
        self.feed_pcm(np.frombuffer(pcm, dtype="<i2").astype(np.int16, copy=False))


class PlaygroundTextSink(TextSink):
    """Sends transcripts, verdicts and states to the page."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox

    def _send(self, message: dict[str, object]) -> None:
        self._outbox.send(json.dumps(message, ensure_ascii=False, separators=(",", ":")))

    def event(self, kind: str, data: dict[str, object]) -> None:
        """An application event for the page (`{"type": "event", "kind": kind, ...data}`)."""
        self._send({**data, "type": "event", "kind": kind})

    def agent_text(self, segment_id: str, text: str) -> None:
        self._send({"type": "agent_text", "id": segment_id, "text": text})

    def agent_segment_ended(self, segment_id: str, result: PlayoutResult, heard_text: str) -> None:
        self._send(
            {
                "type": "verdict",
                "id": segment_id,
                "status": result.status.value,
                "played_ms": round(result.played_ms, 1),
                "heard_text": heard_text,
            }
        )

    def user_transcript(self, item_id: str, text: str, final: bool) -> None:
        self._send({"type": "user_transcript", "item": item_id, "text": text, "final": final})

    def agent_state(self, state: str) -> None:
        self._send({"type": "state", "state": state})

    def notice(self, message: str) -> None:
        self._send({"type": "notice", "message": message})


class PlaygroundTransport(SocketTransport):
    """A browser tab: microphone in, page-clocked playback out, transcript and typed text."""

    def __init__(self, clock: Clock, sample_rate: int = 24000) -> None:
        super().__init__()
        self.clock = clock
        self.sample_rate = sample_rate
        self.source = PlaygroundAudioSource(sample_rate)
        self.sink = PlaygroundAudioSink(self.outbox, clock, sample_rate)
        self.text = PlaygroundTextSink(self.outbox)
        self._typed: Channel[str] = Channel()
        self.pacer = AudioPacer(sample_rate)
        self.ready = asyncio.Event()
        # From the page's `ready`: a text-only call, and what the page says about the call.
        self.text_only = False
        self.metadata: dict[str, str] = {}

    @property
    def audio_in(self) -> PlaygroundAudioSource:
        return self.source

    @property
    def call_info(self) -> CallInfo:
        return CallInfo(
            transport="playground",
            caller=self.metadata.get("caller"),
            parameters=dict(self.metadata),
        )

    @property
    def audio_out(self) -> PlaygroundAudioSink | None:
        return None if self.text_only else self.sink

    @property
    def text_out(self) -> PlaygroundTextSink:
        return self.text

    def text_in(self) -> AsyncIterator[str]:
        return aiter(self._typed)

    def handle_binary(self, data: bytes) -> None:
        if len(data) > MAX_AUDIO_BYTES or len(data) % 2:
            raise PlaygroundProtocolError(
                f"audio message of {len(data)} bytes (must be even and ≤ {MAX_AUDIO_BYTES})"
            )
        if self.ready.is_set() and admit_audio(
            self.pacer, len(data) // 2, self.clock.now(), PlaygroundProtocolError, log
        ):
            self.source.feed(data)

    def handle_text(self, raw: str) -> None:
        if len(raw) > MAX_JSON_BYTES:
            raise PlaygroundProtocolError(f"text message exceeds {MAX_JSON_BYTES} bytes")
        kind, data = typed_message(raw, PlaygroundProtocolError, "text message")
        sink = self.sink
        if kind == "pos":
            sink.on_position(_int(data, "n"), _int(data, "played"))
        elif kind == "started":
            sink.on_started(_int(data, "n"))
        elif kind == "done":
            sink.on_done(_int(data, "n"), _int(data, "played"))
        elif kind == "cleared":
            segments = data.get("segments")
            if not isinstance(segments, list) or len(segments) > MAX_CLEARED_SEGMENTS:
                raise PlaygroundProtocolError("'cleared' needs a bounded list 'segments'")
            positions: list[tuple[int, int]] = []
            for entry in segments:
                if not isinstance(entry, list) or len(entry) != 2:
                    raise PlaygroundProtocolError("'cleared' segments are [n, played] pairs")
                positions.append((_int({"n": entry[0]}, "n"), _int({"p": entry[1]}, "p")))
            sink.on_cleared(positions)
        elif kind == "text":
            self._typed.send(typed_text(data))
        elif kind == "ready":
            self._on_ready(data)
        elif kind == "hangup":
            self.hang_up()
        else:
            raise PlaygroundProtocolError(f"unknown message type {kind[:40]!r}")

    def _on_ready(self, data: dict[str, object]) -> None:
        if self.ready.is_set():
            return
        output = data.get("output", "audio")
        if output not in ("audio", "text"):
            raise PlaygroundProtocolError('\'output\' must be "audio" or "text"')
        self.text_only = output == "text"
        self.metadata = page_metadata(data)
        self.ready.set()

    def _on_hang_up(self) -> None:
        # The tab hung up or the socket closed: segments resolve from the last reports.
        self.source.close()
        self._typed.close()
        self.sink.connection_lost()


async def handle_playground(
    ws: CallSocket,
    on_call: OnCall,
    *,
    sample_rate: int = 24000,
    clock: Clock | None = None,
) -> None:
    """Serve one page connection: `hello`, wait for `ready`, run `on_call`, close cleanly."""
    transport = PlaygroundTransport(clock or MonotonicClock(), sample_rate)
    transport.outbox.send(json.dumps({"type": "hello", "sample_rate": sample_rate}))

    def handle(raw: str | bytes) -> None:
        if isinstance(raw, bytes):
            transport.handle_binary(raw)
        else:
            transport.handle_text(raw)

    async def body() -> None:
        try:
            ready = asyncio.create_task(transport.ready.wait())
            closed = asyncio.create_task(transport.wait_closed())
            try:
                await asyncio.wait(
                    {ready, closed}, timeout=READY_TIMEOUT_S, return_when="FIRST_COMPLETED"
                )
            finally:
                ready.cancel()
                closed.cancel()
            if transport.ready.is_set() and not transport.hung_up:
                await on_call(transport)
        finally:
            # Stop the page's player and resolve every segment before the socket goes.
            await transport.sink.aclose()

    await run_socket_call(
        ws,
        transport,
        handle,
        body,
        protocol_error=PlaygroundProtocolError,
        log=log,
        label="playground",
    )
