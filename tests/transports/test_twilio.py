"""Twilio Media Streams: a fake Twilio plays the phone side over a real WebSocket.

The fake Twilio buffers our outbound media, "plays" it when the test says so (controlled pace)
and echoes each mark once the audio before it has played — and, like Twilio, echoes every
pending mark at once when it receives `clear`.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from vocalis.audio.espeak import synthesize
from vocalis.audio.g711 import ulaw_encode
from vocalis.transports.base import PlayoutStatus
from vocalis.transports.twilio import TwilioProtocolError, TwilioTransport, parse_message
from vocalis.transports.twilio.protocol import Media, Start, mark_message, media_message
from vocalis.transports.twilio.sink import TwilioSegment
from vocalis.transports.twilio.transport import serve_twilio

SID = "MZ0123456789abcdef"


class FakeTwilio:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.log: list[dict[str, Any]] = []  # every outbound message we received, in order
        self.queue: deque[tuple[str, Any]] = deque()  # ("media", bytes) | ("mark", name)
        self.played = 0  # bytes of μ-law played (8 kHz: 8 bytes per ms)
        self.played_since_clear = 0
        self.changed = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def start(self) -> None:
        await self.ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1"}))
        await self.ws.send(
            json.dumps(
                {
                    "event": "start",
                    "sequenceNumber": "1",
                    "streamSid": SID,
                    "start": {
                        "accountSid": "AC1",
                        "callSid": "CA1",
                        "streamSid": SID,
                        "tracks": ["inbound"],
                        "customParameters": {"caller": "+15550100"},
                        "mediaFormat": {
                            "encoding": "audio/x-mulaw",
                            "sampleRate": 8000,
                            "channels": 1,
                        },
                    },
                }
            )
        )

    async def send_caller_audio(self, pcm8k: np.ndarray) -> None:
        """Inbound media at real pace: one 20 ms frame every 20 ms."""
        payload = ulaw_encode(pcm8k)
        for k, offset in enumerate(range(0, len(payload), 160)):
            chunk = payload[offset : offset + 160]
            msg = {
                "event": "media",
                "sequenceNumber": str(k + 2),
                "streamSid": SID,
                "media": {
                    "track": "inbound",
                    "chunk": str(k + 1),
                    "timestamp": str(k * 20),
                    "payload": base64.b64encode(chunk).decode(),
                },
            }
            await self.ws.send(json.dumps(msg))
            await asyncio.sleep(0.02)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                msg = json.loads(raw)
                self.log.append(msg)
                assert msg["streamSid"] == SID
                if msg["event"] == "media":
                    self.queue.append(("media", base64.b64decode(msg["media"]["payload"])))
                elif msg["event"] == "mark":
                    self.queue.append(("mark", msg["mark"]["name"]))
                elif msg["event"] == "clear":
                    # Twilio empties its buffer and returns every pending mark at once.
                    pending = [v for kind, v in self.queue if kind == "mark"]
                    self.queue.clear()
                    self.played_since_clear = 0
                    for name in pending:
                        await self._ack(name)
                self.changed.set()
        except ConnectionClosed:
            pass

    async def _ack(self, name: str) -> None:
        await self.ws.send(json.dumps({"event": "mark", "streamSid": SID, "mark": {"name": name}}))

    async def play(self, ms: int) -> None:
        """Play `ms` of buffered audio (waiting for it to arrive), acking marks reached."""
        todo = ms * 8
        while True:
            while self.queue and self.queue[0][0] == "mark":
                await self._ack(self.queue.popleft()[1])
            if todo == 0:
                return
            if not self.queue:
                self.changed.clear()
                await asyncio.wait_for(self.changed.wait(), 5)
                continue
            kind, data = self.queue[0]
            take = min(todo, len(data))
            self.played += take
            self.played_since_clear += take
            todo -= take
            if take == len(data):
                self.queue.popleft()
            else:
                self.queue[0] = (kind, data[take:])

    def queued_media_bytes(self) -> int:
        return sum(len(data) for kind, data in self.queue if kind == "media")

    async def play_all(self) -> None:
        while self.queue:
            kind, data = self.queue[0]
            await self.play(len(data) // 8 if kind == "media" else 0)
            if kind == "media" and len(data) % 8:
                self.queue.popleft()


async def until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    """Wait (bounded) for state the fake's reader task updates."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - polls state owned by another task
            await asyncio.sleep(0.01)


def chunks_of(audio: np.ndarray, nbytes: int) -> list[np.ndarray]:
    """Provider-style deltas of an arbitrary byte size (1234 B = 617 samples)."""
    step = nbytes // 2
    return [audio[i : i + step] for i in range(0, audio.shape[0], step)]


async def test_twilio_call_framing_marks_clear_and_truncation() -> None:
    calls: asyncio.Queue[TwilioTransport] = asyncio.Queue()
    release = asyncio.Event()

    async def on_call(transport: TwilioTransport) -> None:
        await calls.put(transport)
        await transport.wait_closed()
        await asyncio.wait_for(release.wait(), 10)

    endpoint = await serve_twilio(on_call, port=0)
    async with endpoint, connect(endpoint.url) as ws:
        fake = FakeTwilio(ws)
        await fake.start()
        transport = await asyncio.wait_for(calls.get(), 5)
        assert transport.custom_parameters == {"caller": "+15550100"}

        # Caller speaks 1000 ms at 8 kHz; the runtime reads it at 24 kHz.
        received: list[int] = []

        async def consume() -> None:
            async for frame in transport.audio_in.frames(24000):
                assert frame.sample_rate == 24000
                received.append(frame.num_samples)

        consumer = asyncio.create_task(consume())
        tone = (np.sin(np.arange(8000) * 2 * np.pi * 300 / 8000) * 8000).astype(np.int16)
        await fake.send_caller_audio(tone)

        # The agent answers with two messages, pushed in 1,234-byte provider deltas.
        first = synthesize("Thanks for calling.", sample_rate=24000)
        second = synthesize("Our opening hours are nine to five, Monday to Friday.")
        sink = transport.audio_out
        seg1 = sink.begin_segment("item_1", 24000)
        seg2 = sink.begin_segment("item_2", 24000)
        for chunk in chunks_of(second.samples, 1234):  # message 2 streams while 1 is open
            seg2.push(chunk)
        seg2.end()
        for chunk in chunks_of(first.samples, 1234):
            seg1.push(chunk)
        seg1.end()

        # Twilio plays message 1 completely, then 500 ms of message 2.
        seg1_bytes = round(first.duration_ms * 8)
        await fake.play(seg1_bytes // 8)
        await fake.play(1)  # the sub-ms remainder and the end mark
        r1 = await asyncio.wait_for(seg1.wait_for_playout(), 5)
        assert r1.status is PlayoutStatus.FULL
        assert r1.played_ms == pytest.approx(first.duration_ms, abs=0.2)
        await fake.play(500)
        # The acks reach the server: wait for the acknowledged position, not a fixed time.
        await until(lambda: seg2.played_ms >= 420.0)
        assert seg2.started.done()

        # Barge-in: clear; played position comes from the last acknowledged mark.
        clear_index = len(fake.log)
        sink.clear()
        r2 = await asyncio.wait_for(seg2.wait_for_playout(), 5)
        assert r2.status is PlayoutStatus.PARTIAL
        # Marks of message 2 sit at 20 ms, then every 100 ms: 120, 220, 320, 420, 520, ...
        # Twilio played ~499-500 ms of it, so the last acknowledged mark is 420 ms.
        assert r2.played_ms == 420.0
        # Stale frames: pushes into the cleared segment go nowhere.
        seg2.push(second.samples[:4800])
        # The pending marks Twilio echoes after `clear` are ignored.
        await until(lambda: sink.stale_marks >= 1)
        assert sink.stale_marks >= 1
        assert (await seg2.wait_for_playout()).played_ms == 420.0

        # A new message after the barge-in streams normally.
        seg3 = sink.begin_segment("item_3", 24000)
        seg3.push(first.samples)
        seg3.end()
        # Twilio buffers all of message 3, then its end mark (sent after the last frame).
        size = round(first.duration_ms * 8)
        await until(lambda: fake.queued_media_bytes() == size and fake.queue[-1][0] == "mark")
        await fake.play_all()
        r3 = await asyncio.wait_for(seg3.wait_for_playout(), 5)
        assert r3.status is PlayoutStatus.FULL

        after = fake.log[clear_index:]
        assert after[0]["event"] == "clear"
        assert all(m["event"] != "clear" for m in after[1:])
        seg3_media = [m for m in after[1:] if m["event"] == "media"]
        assert sum(len(base64.b64decode(m["media"]["payload"])) for m in seg3_media) == round(
            first.duration_ms * 8
        )

        # Framing: every media frame is exactly 160 bytes, except the final flush of a message
        # (the frame right before its end mark).
        media_sizes = []
        for i, m in enumerate(fake.log):
            if m["event"] != "media":
                continue
            size = len(base64.b64decode(m["media"]["payload"]))
            nxt = fake.log[i + 1] if i + 1 < len(fake.log) else None
            is_last_of_segment = (
                nxt is not None and nxt["event"] == "mark" and size < 160 and size > 0
            )
            media_sizes.append(size)
            assert size == 160 or is_last_of_segment, (i, size)
        assert media_sizes.count(160) >= len(media_sizes) - 3

        # Hang-up: inbound 8 kHz -> 24 kHz preserved the duration (1000 ms ± 1 ms).
        await ws.send(json.dumps({"event": "stop", "streamSid": SID, "stop": {}}))
        await asyncio.wait_for(consumer, 5)
        assert sum(received) / 24 == pytest.approx(1000.0, abs=1.0)
        release.set()
        await asyncio.wait_for(fake.reader, 5)


async def test_wrong_or_missing_token_is_refused() -> None:
    async def on_call(transport: TwilioTransport) -> None:  # pragma: no cover - never called
        raise AssertionError("must not be called")

    endpoint = await serve_twilio(on_call, port=0, token="s3cret-token")
    async with endpoint:
        base = endpoint.url.rsplit("/", 1)[0]
        for url in (base, base + "/wrong", base + "?token=nope", base.replace("twilio", "x")):
            with pytest.raises(InvalidStatus) as info:
                async with connect(url):
                    pass
            assert info.value.response.status_code in (403, 404)
            assert b"s3cret" not in info.value.response.body
        async with connect(base + "?token=s3cret-token") as ws:
            # A socket that never sends `start` but garbage is closed with a clear reason.
            await ws.send("not json")
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
            assert "JSON" in closed.value.rcvd.reason


async def test_unsupported_media_format_is_refused() -> None:
    async def on_call(transport: TwilioTransport) -> None:  # pragma: no cover
        raise AssertionError("must not be called")

    endpoint = await serve_twilio(on_call, port=0)
    async with endpoint, connect(endpoint.url) as ws:
        await ws.send(
            json.dumps(
                {
                    "event": "start",
                    "streamSid": SID,
                    "start": {"mediaFormat": {"encoding": "audio/l16", "sampleRate": 16000}},
                }
            )
        )
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert (
            closed.value.rcvd is not None and "unsupported media format" in closed.value.rcvd.reason
        )


def test_parse_validates_and_bounds() -> None:
    media = parse_message(
        media_message(SID, b"\xff" * 160).replace('"media":{', '"media":{"chunk":"3",')
    )
    assert isinstance(media, Media) and media.payload == b"\xff" * 160 and media.chunk == 3
    start = parse_message(json.dumps({"event": "start", "start": {"streamSid": SID}}))
    assert isinstance(start, Start) and start.sample_rate == 8000
    for bad, reason in [
        ("[]", "not a JSON object"),
        ('{"event": 3}', "no string 'event'"),
        ('{"event": "media"}', "object field 'media'"),
        ('{"event": "media", "media": {"payload": "%%%"}}', "not valid base64"),
        ('{"event": "mark", "mark": {}}', "string field 'name'"),
        ('{"event": "start", "start": {"streamSid": "bad sid!"}}', "invalid streamSid"),
        ('{"event": "media", "media": {"payload": "", "chunk": "x"}}', "must be a number"),
    ]:
        with pytest.raises(TwilioProtocolError, match=reason):
            parse_message(bad)
    with pytest.raises(TwilioProtocolError, match="exceeds"):
        parse_message("x" * 70_000)
    with pytest.raises(ValueError, match="invalid mark name"):
        mark_message(SID, 'a"b')


async def test_twilio_call_against_sim_server_truncates_at_the_last_acknowledged_mark() -> None:
    """Issue 5's telephony criterion end to end: the fake Twilio sends the caller's speech at
    real pace, plays our answer only as far as it acknowledges marks, and the caller barges
    in; the runtime sends `clear`, and the provider's truncate is the last acknowledged mark."""
    from vocalis.app.conversation import api_root
    from vocalis.conversation.items import MessageItem
    from vocalis.providers.base import TurnDetection
    from vocalis.providers.openai import OpenAIRealtimeModel
    from vocalis.runtime.agent import Agent
    from vocalis.runtime.options import AgentSessionOptions
    from vocalis.runtime.session import AgentSession
    from vocalis.sim.server import SimServer
    from vocalis.utils.clock import MonotonicClock

    answer = (
        "We are open from nine in the morning to five in the evening, Monday to Friday, "
        "and on Saturdays from ten until two."
    )
    scenario = {"responses": [{"say": answer}, {"say": "Sure, go ahead."}]}
    histories: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    sessions: list[AgentSession] = []
    options = AgentSessionOptions(
        turn_detection=TurnDetection(type="server_vad", silence_duration_ms=300)
    )

    def answer_played_ms() -> float:
        """The server's played position of the answer (its last acknowledged mark)."""
        runs = sessions[0].responses if sessions else []
        pulled = runs[0].playout.pulled if runs else []
        segment = pulled[0].segment if pulled else None
        return segment.played_ms if isinstance(segment, TwilioSegment) else 0.0

    def reply_heard() -> bool:
        """The second answer settled in the history: played to its acknowledged end."""
        return not sessions[0].responses and any(
            isinstance(i, MessageItem) and i.text == "Sure, go ahead." for i in sessions[0].history
        )

    def caller(text: str, silence_ms: int) -> np.ndarray:
        voice = synthesize(text, sample_rate=8000).samples
        return np.concatenate([voice, np.zeros(silence_ms * 8, dtype=np.int16)])

    async with SimServer(scenario=scenario, pace=0.0) as sim:
        model = OpenAIRealtimeModel(
            "gpt-realtime", api_key="sim-local", base_url=api_root(sim.url), reconnect=False
        )

        async def on_call(transport: TwilioTransport) -> None:
            session = AgentSession(model, transport, clock=MonotonicClock(), options=options)
            sessions.append(session)
            await session.start(Agent("You answer questions about opening hours."))
            try:
                await transport.wait_closed()
            finally:
                await histories.put(session.history_json())
                await session.aclose()

        endpoint = await serve_twilio(on_call, port=0)
        async with endpoint, connect(endpoint.url) as ws:
            fake = FakeTwilio(ws)
            await fake.start()
            await fake.send_caller_audio(caller("When are you open?", 600))
            # The answer arrives; Twilio plays one second of it, acknowledging marks.
            async with asyncio.timeout(10):
                while not any(kind == "media" for kind, _ in fake.queue):
                    fake.changed.clear()
                    await fake.changed.wait()
            await fake.play(1000)
            await until(lambda: answer_played_ms() == 920.0)  # the acks reach the server
            # The caller barges in (Twilio keeps its buffer until told to clear).
            clear_before = sum(m["event"] == "clear" for m in fake.log)
            await fake.send_caller_audio(caller("Wait, stop please.", 0))
            await until(lambda: sum(m["event"] == "clear" for m in fake.log) > clear_before)
            await fake.send_caller_audio(np.zeros(8 * 600, dtype=np.int16))
            # The next answer plays in full (as it arrives) until the server has settled it.
            async with asyncio.timeout(10):
                while not reply_heard():
                    await fake.play_all()
                    await asyncio.sleep(0.01)
            await ws.send(json.dumps({"event": "stop", "streamSid": SID, "stop": {}}))
            history = await asyncio.wait_for(histories.get(), 10)
        provider = sim.sessions[0]

    assistant = [i for i in history["items"] if i.get("role") == "assistant"]
    cut, reply = assistant
    # Marks follow the first 20 ms frame, then every 100 ms: 20, 120, ..., 920, 1020. Twilio
    # played 1000 ms, so the last acknowledged mark — what the caller surely heard — is 920.
    assert cut["interrupted"] is True and cut["played_ms"] == 920.0
    assert answer.startswith(cut["text"]) and 0 < len(cut["text"]) < len(answer) // 2
    assert reply["text"] == "Sure, go ahead." and reply["interrupted"] is False
    truncates = [e for e in provider.client_events if e["type"] == "conversation.item.truncate"]
    assert [(t["item_id"], t["audio_end_ms"]) for t in truncates] == [(cut["id"], 920)]
    # Server VAD cancelled the response itself: the client never sent a cancel.
    assert not [e for e in provider.client_events if e["type"] == "response.cancel"]
    # Outbound framing: 160-byte frames, only a message's final flush may be shorter.
    for i, m in enumerate(fake.log):
        if m["event"] == "media":
            size = len(base64.b64decode(m["media"]["payload"]))
            nxt = fake.log[i + 1] if i + 1 < len(fake.log) else None
            assert size == 160 or (nxt is not None and nxt["event"] == "mark"), (i, size)
