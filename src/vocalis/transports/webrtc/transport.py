"""One browser (or app) = one call over WebRTC: the `Transport` and its data channel protocol.

Media: the caller's microphone arrives as an Opus track (decoded by aiortc to 48 kHz) and
feeds the audio source; the agent's audio leaves as the sink's `OutboundTrack`.

Data channel (one, ordered and reliable, opened by the page; JSON text messages):
- page → server (validated and bounded; anything else ends the call): `ready` (its audio
  plays; the call starts then; `metadata` as on the playground socket), `pos {rtp}` and
  `cleared {rtp}` (playout reports, see `sink.py`), `text {text}` (as on the playground socket),
  `hangup`;
- server → page: the sink's `segment` / `start` / `clear`, and the text sink's `agent_text`,
  `verdict`, `user_transcript`, `state`, `notice` (the playground's messages, so the same
  page renders both transports).

Outbound messages queue in an `Outbox` drained by one writer task; when the browser stops
reading (the SCTP buffer holds more than `MAX_BUFFERED_BYTES`), the call is hung up rather
than buffering without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator

import numpy as np
from aiortc import MediaStreamTrack, RTCDataChannel
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame as AvFrame

from vocalis.audio.frame import Int16Array
from vocalis.transports._source import FixedRateAudioSource
from vocalis.transports._web import Outbox
from vocalis.transports.base import CallInfo, Transport
from vocalis.transports.playground.transport import (
    PlaygroundProtocolError,
    PlaygroundTextSink,
    page_metadata,
    typed_message,
    typed_text,
)
from vocalis.transports.webrtc.sink import WebRTCAudioSink
from vocalis.transports.webrtc.timeline import RTP_MODULUS, STREAM_RATE
from vocalis.utils.channel import Channel
from vocalis.utils.clock import Clock
from vocalis.utils.flag import Flag

__all__ = [
    "MAX_MESSAGE_BYTES",
    "WebRTCProtocolError",
    "WebRTCTransport",
]

log = logging.getLogger("vocalis.transports.webrtc")

MAX_MESSAGE_BYTES = 16 * 1024
MAX_BUFFERED_BYTES = 1024 * 1024


class WebRTCProtocolError(ValueError):
    """The page sent something outside the protocol (the message says what)."""


def _rtp(data: dict[str, object], *, nullable: bool = False) -> int | None:
    value = data.get("rtp")
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < RTP_MODULUS:
        raise WebRTCProtocolError("field 'rtp' must be a 32-bit RTP timestamp")
    return value


def _mono(frame: AvFrame) -> Int16Array:
    """Decoded caller audio (s16, mono or stereo) as int16 mono.

    Hot path (every 20 ms): stereo is mixed as (left + right) / 2 in int32, no float copies.
    aiortc's Opus decoder gives packed stereo (one interleaved row); planar has one row per
    channel.
    """
    pcm: Int16Array = np.asarray(frame.to_ndarray(), dtype=np.int16)
    channels = len(frame.layout.channels)
    if channels == 1:
        return pcm.reshape(-1)
    if frame.format.is_planar:
        left, right = pcm[0], pcm[1]
    else:
        row = pcm.reshape(-1)
        left, right = row[0::channels], row[1::channels]
    mixed = np.add(left, right, dtype=np.int32)
    mixed >>= 1
    mono: Int16Array = mixed.astype(np.int16)
    return mono


class WebRTCTransport(Transport):
    """A WebRTC peer: microphone track in, browser-clocked Opus out, text on the data channel."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.outbox = Outbox()
        self.source = FixedRateAudioSource(STREAM_RATE)
        self.sink = WebRTCAudioSink(self._send_json, clock)
        self.text = PlaygroundTextSink(self.outbox)
        self.ready = asyncio.Event()
        # From the page's `ready`: its `?meta.*` values (`call_info.parameters`).
        self.metadata: dict[str, str] = {}
        self.last_message_at = clock.now()
        self.protocol_errors = 0
        self._typed: Channel[str] = Channel()
        self._hung_up = Flag()
        self._channel: RTCDataChannel | None = None
        # The task reading the caller's track (owned and awaited by the endpoint).
        self.mic_task: asyncio.Task[None] | None = None

    @property
    def call_info(self) -> CallInfo:
        return CallInfo(
            transport="webrtc", caller=self.metadata.get("caller"), parameters=dict(self.metadata)
        )

    @property
    def audio_in(self) -> FixedRateAudioSource:
        return self.source

    @property
    def audio_out(self) -> WebRTCAudioSink:
        return self.sink

    @property
    def text_out(self) -> PlaygroundTextSink:
        return self.text

    def text_in(self) -> AsyncIterator[str]:
        return aiter(self._typed)

    @property
    def hung_up(self) -> bool:
        return self._hung_up.is_set()

    async def wait_closed(self) -> None:
        await self._hung_up.wait()

    def hang_up(self) -> None:
        """The call is over (idempotent): inputs end, every segment resolves, output stops."""
        if self.hung_up:
            return
        self.source.close()
        self._typed.close()
        self.sink.connection_lost()
        self.outbox.close()
        self._hung_up.set()

    def _send_json(self, message: dict[str, object]) -> None:
        self.outbox.send(json.dumps(message, separators=(",", ":")))

    # ------------------------------------------------------------------ data channel

    def attach_channel(self, channel: RTCDataChannel) -> None:
        """The page's data channel (the first one; a second is a protocol error)."""
        if self._channel is not None:
            self._violation(WebRTCProtocolError("only one data channel per call"))
            return
        self._channel = channel
        channel.on("message", self._on_message)
        channel.on("close", self.hang_up)

    async def write_channel(self) -> None:
        """Drain the outbox into the data channel until the call ends."""
        while (batch := await self.outbox.next_batch()) is not None:
            channel = self._channel
            if channel is None or channel.readyState != "open":
                continue  # messages before the channel opened are of no use to the page
            if channel.bufferedAmount > MAX_BUFFERED_BYTES:
                log.warning("webrtc: the page stopped reading its data channel; hanging up")
                self.hang_up()
                return
            for message in batch:
                channel.send(message)

    def _on_message(self, raw: str | bytes) -> None:
        self.last_message_at = self.clock.now()
        try:
            self.handle_message(raw)
        except (WebRTCProtocolError, PlaygroundProtocolError) as exc:
            self._violation(exc)

    def _violation(self, exc: ValueError) -> None:
        self.protocol_errors += 1
        log.warning("webrtc: ending the call on protocol error: %s", exc)
        self.hang_up()

    def handle_message(self, raw: str | bytes) -> None:
        """Apply one page message; raises `WebRTCProtocolError` (or, for the messages shared
        with the playground socket, `PlaygroundProtocolError`) outside the protocol."""
        if not isinstance(raw, str):
            raise WebRTCProtocolError("data channel messages are JSON text")
        if len(raw) > MAX_MESSAGE_BYTES:
            raise WebRTCProtocolError(f"message exceeds {MAX_MESSAGE_BYTES} bytes")
        kind, data = typed_message(raw, WebRTCProtocolError, "message")
        if kind == "pos":
            rtp = _rtp(data)
            assert rtp is not None
            self.sink.on_position(rtp)
        elif kind == "cleared":
            self.sink.on_cleared(_rtp(data, nullable=True))
        elif kind == "text":
            self._typed.send(typed_text(data))
        elif kind == "ready":
            self._on_ready(data)
        elif kind == "hangup":
            self.hang_up()
        else:
            raise WebRTCProtocolError(f"unknown message type {kind[:40]!r}")

    def _on_ready(self, data: dict[str, object]) -> None:
        if not self.ready.is_set():
            self.metadata = page_metadata(data)
            self.ready.set()

    # ------------------------------------------------------------------ microphone

    async def read_microphone(self, track: MediaStreamTrack) -> None:
        """Feed the caller's decoded audio to the source (dropped until the page is ready)."""
        with contextlib.suppress(MediaStreamError):
            while not self.hung_up:
                frame = await track.recv()
                if self.ready.is_set() and isinstance(frame, AvFrame):
                    if frame.sample_rate != STREAM_RATE:
                        continue  # aiortc decodes Opus at 48 kHz; anything else is not ours
                    self.source.feed_pcm(_mono(frame))
