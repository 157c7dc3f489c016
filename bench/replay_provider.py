"""A replay provider: `vocalis sim-server`'s own output for the continuous load, sent back cheaply.

Why: on this 2-core machine the sim shares the cores with the agents it serves, and at a few
hundred sessions it takes 0.5–0.6 cores and delivers audio late in the instants when every
session's response starts together. A density figure for *several agent processes* then
measures where the co-located sim falls behind, not the agents (a real provider runs on other
machines). This server speaks only what the continuous load needs and costs a fraction of the
sim per session: its events are the sim's, recorded once, and are replayed from templates.

* :func:`capture` runs the real sim (``--log``) with one vocalis session for two responses (a
  word, then the continuous load's two messages) and keeps ``session.created``,
  ``conversation.created``, the ``session.updated`` that answered vocalis's
  ``session.update``, and the second response's events. Ids become slots (session, response,
  the two items, the item before them, the request's ``metadata.client_event_id``, each
  event); each event's due time is the audio the sim had streamed before it (as the sim
  paces: a chunk goes out when the timeline reaches its start). The recorder keeps only the
  byte count of each audio delta, so the replay cuts that many bytes of espeak speech of the
  message's text.
* The server (``python -m bench.replay_provider --recording FILE``, picows on uvloop) answers
  ``session.update``, ``response.create`` (a fresh response with new ids, paced at ``--pace``)
  and ``input_audio_buffer.clear`` (the density bench's RTT probe); appends are recognised by
  their first bytes and dropped unparsed. One 5 ms timer serves every session's stream.

Not a protocol implementation: no VAD, history, truncation or errors; a second
``response.create`` while one streams is ignored. It is only for loads whose client sends
nothing else (``bench.density`` with ``load="continuous"``, ``provider="replay"``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import (
    CONTINUOUS_RESPONSE,
    SimProcess,
    run_on,
    server_process,
    sim_process,
    write_scenario,
)

BYTES_PER_MS = 48  # 24 kHz pcm16, the sim's default output format
TICK_S = 0.005
RECORDING_VERSION = 2  # a cached recording of another version is captured again
_APPEND_PREFIX = b'{"type":"input_audio_buffer.append"'
CLEARED = '{{"type":"input_audio_buffer.cleared","event_id":{E}}}'


# ------------------------------------------------------------------------------------ capture


def _template(event: dict[str, Any], ids: dict[str, str]) -> str:
    """Compact JSON of ``event`` with ``str.format`` slots where the recorded ids were."""
    text = json.dumps(event, separators=(",", ":")).replace("{", "{{").replace("}", "}}")
    for slot, value in ids.items():
        quoted = json.dumps(value)
        text = text.replace(quoted, "{" + slot + "}")
    return text


def recording_from_log(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The replay recording, from a sim ``--log`` of one session with two finished responses."""
    out = [line["event"] for line in lines if line.get("dir") == "out"]
    starts = [i for i, e in enumerate(out) if e["type"] == "response.created"]
    ends = [i for i, e in enumerate(out) if e["type"] == "response.done"]
    if len(ends) < 2:
        raise ValueError(f"the log holds {len(ends)} finished responses; capture needs 2")
    created = next(e for e in out if e["type"] == "session.created")
    session_id = created["session"]["id"]
    response = out[starts[1] : ends[1] + 1]
    items = [e["item"]["id"] for e in response if e["type"] == "response.output_item.added"]
    previous = next(e for e in response if e["type"] == "conversation.item.added")
    ids = {"S": session_id, "R": response[0]["response"]["id"], "I0": items[0], "I1": items[1]}
    ids["P"] = previous["previous_item_id"]
    # vocalis tags each response.create and matches response.created by this tag.
    ids["M"] = (response[0]["response"].get("metadata") or {}).get("client_event_id")
    ids = {slot: value for slot, value in ids.items() if isinstance(value, str) and value}
    events: list[list[Any]] = []
    audio_ms = 0.0
    offsets = {items[0]: 0, items[1]: 0}
    for event in response:
        event = {**event, "event_id": "@E@"}
        audio = event["type"] == "response.output_audio.delta"
        size = int(event.pop("delta")) if audio else 0
        text = _template(event, ids).replace('"@E@"', "{E}")
        if audio:
            text = text[: -len("}}")] + ',"delta":"'  # the payload and the closing go after it
            item = event["item_id"]
            events.append([round(audio_ms, 3), text, size, items.index(item), offsets[item]])
            offsets[item] += size
        else:
            events.append([round(audio_ms, 3), text, 0, -1, 0])
        audio_ms += size / BYTES_PER_MS
    texts = [
        e["transcript"] for e in response if e["type"] == "response.output_audio_transcript.done"
    ]

    def fixed(kind: str) -> str:
        event = next(e for e in out if e["type"] == kind)
        return _template({**event, "event_id": "@E@"}, {"S": session_id}).replace('"@E@"', "{E}")

    return {
        "version": RECORDING_VERSION,
        "session_created": fixed("session.created"),
        "conversation_created": fixed("conversation.created"),
        "session_updated": fixed("session.updated"),
        "events": events,
        "texts": texts,
    }


async def capture(path: Path, scratch: Path) -> Path:
    """Record the sim's continuous-load output at ``path`` (see the module docs); ~3 s.

    The first response is one short word, so the second (the recorded one) follows it soon
    and has an item before it; the sim streams it at pace 8 and the log is read once it ends.
    """
    from bench.agents import make_client

    responses = [["Okay."], list(CONTINUOUS_RESPONSE), list(CONTINUOUS_RESPONSE)]
    scenario = write_scenario(scratch / "scenario_replay_capture.json", responses)
    log = scratch / "replay_capture.jsonl"
    log.unlink(missing_ok=True)
    async with sim_process(scenario, pace=8.0, log=log) as sim:
        client = make_client("vocalis", caller="feeder")
        await client.start(sim.base_url)
        client.keep_speaking()
        silence = np.zeros(480, dtype=np.int16)
        async with asyncio.timeout(60):
            while (await asyncio.to_thread(log.read_text, encoding="utf-8")).count(
                '"type":"response.done"'
            ) < 2:
                client.feed_now(silence)
                await asyncio.sleep(0.05)
        await client.aclose()
    text = await asyncio.to_thread(log.read_text, encoding="utf-8")
    lines = [json.loads(raw) for raw in text.splitlines()]
    await asyncio.to_thread(path.write_text, json.dumps(recording_from_log(lines)), "utf-8")
    return path


def _version(recording: Path) -> int | None:
    try:
        return int(json.loads(recording.read_text(encoding="utf-8")).get("version", 0))
    except (OSError, ValueError, AttributeError):
        return None


@contextlib.asynccontextmanager
async def replay_process(scratch: Path, *, pace: float) -> AsyncIterator[SimProcess]:
    """The replay server in its own process (capturing its recording first when the scratch
    folder has none of this version)."""
    recording = scratch / "replay_continuous.json"
    if _version(recording) != RECORDING_VERSION:
        await capture(recording, scratch)
    args = [sys.executable, "-m", "bench.replay_provider", "--recording", str(recording)]
    async with server_process([*args, "--pace", str(pace)], "replay provider") as server:
        yield server


# ------------------------------------------------------------------------------------- server


@dataclass
class _Stream:
    listener: Any
    started: float
    ids: dict[str, str]
    index: int = 0


@dataclass
class Replayer:
    """Every connection's response streams, paced on one shared timer."""

    recording: dict[str, Any]
    pace: float
    loop: asyncio.AbstractEventLoop
    streams: list[_Stream] = field(default_factory=list)
    payloads: dict[int, bytes] = field(default_factory=dict)  # by event index
    connections: int = 0
    _ticking: bool = False

    def __post_init__(self) -> None:
        """Each audio delta's payload, cut from espeak speech of its message's text (the
        recorder keeps only byte counts; speech, not silence, so content-dependent work in
        the agent, e.g. finding where a message turns audible, runs as against the sim)."""
        from vocalis.audio.espeak import synthesize

        speech = [
            synthesize(text, sample_rate=24000).samples.tobytes()
            for text in self.recording["texts"]
        ]
        for index, (_due, _text, size, item, offset) in enumerate(self.recording["events"]):
            if size:
                piece = speech[item][offset : offset + size].ljust(size, b"\0")
                self.payloads[index] = base64.b64encode(piece) + b'"}'

    def start(self, listener: Any, ids: dict[str, str]) -> None:
        self.streams.append(_Stream(listener, self.loop.time(), ids))
        if not self._ticking:
            self._ticking = True
            self.loop.call_soon(self._tick)

    def _tick(self) -> None:
        now = self.loop.time()
        events = self.recording["events"]
        keep: list[_Stream] = []
        for stream in self.streams:
            if stream.listener.closed:
                continue
            while stream.index < len(events):
                index = stream.index
                due, text, size, _item, _offset = events[index]
                if stream.started + due / 1000.0 / self.pace > now:
                    break
                stream.index += 1
                data = stream.listener.render(text, stream.ids)
                stream.listener.send(data + self.payloads[index] if size else data)
            if stream.index < len(events):
                keep.append(stream)
            else:
                stream.listener.response_done()
        self.streams = keep
        if keep:
            self.loop.call_later(TICK_S, self._tick)
        else:
            self._ticking = False


def render(template: str, slots: dict[str, str], event_id: str) -> bytes:
    """One recorded event with this connection's ids (slot values are JSON literals)."""
    return template.format_map({**slots, "E": json.dumps(event_id)}).encode()


def session_slots(connection: int) -> dict[str, str]:
    """The slot every message of a connection carries: its session id."""
    return {"S": json.dumps(f"sess_replay{connection:06d}")}


def response_slots(
    connection: int, response: int, previous_item: str | None, request: dict[str, Any]
) -> dict[str, str]:
    """The slot values of a connection's ``response``-th response: fresh response and item
    ids, the item before them (None for the first), and the request's tag echoed."""
    prefix = f"{connection}x{response}"
    tag = ((request.get("response") or {}).get("metadata") or {}).get("client_event_id")
    return {
        **session_slots(connection),
        "R": json.dumps(f"resp_{prefix}"),
        "I0": json.dumps(f"item_{prefix}a"),
        "I1": json.dumps(f"item_{prefix}b"),
        "P": json.dumps(previous_item),
        "M": json.dumps(tag),
    }


def make_listener(replayer: Replayer) -> Any:
    """A picows listener class bound to ``replayer`` (picows is imported only by the server)."""
    from picows import WSListener, WSMsgType

    class ReplayListener(WSListener):
        def __init__(self) -> None:
            super().__init__()
            replayer.connections += 1
            self.number = replayer.connections
            self.closed = False
            self.transport: Any = None
            self.events = 0
            self.responses = 0
            self.last_item: str | None = None
            self.active = False
            self.session = session_slots(self.number)

        def send(self, data: bytes) -> None:
            self.transport.send(WSMsgType.TEXT, data)

        def render(self, template: str, slots: dict[str, str]) -> bytes:
            self.events += 1
            return render(template, slots, f"event_r{self.number}_{self.events}")

        def on_ws_connected(self, transport: Any) -> None:
            self.transport = transport
            for kind in ("session_created", "conversation_created"):
                self.send(self.render(replayer.recording[kind], self.session))

        def on_ws_disconnected(self, transport: Any) -> None:
            self.closed = True

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if frame.msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()
                return
            if frame.msg_type != WSMsgType.TEXT:
                return
            data = frame.get_payload_as_bytes()
            if data.startswith(_APPEND_PREFIX):
                return
            try:
                event = json.loads(data)
                kind = event.get("type")
            except (ValueError, AttributeError):
                return  # not an event object: the load's clients never send one; ignore it
            if kind == "session.update":
                self.send(self.render(replayer.recording["session_updated"], self.session))
            elif kind == "input_audio_buffer.clear":
                self.send(self.render(CLEARED, {}))
            elif kind == "response.create" and not self.active:
                self.active = True
                self.responses += 1
                slots = response_slots(self.number, self.responses, self.last_item, event)
                self.last_item = json.loads(slots["I1"])
                replayer.start(self, slots)

        def response_done(self) -> None:
            self.active = False

    return ReplayListener


async def serve(recording: Path, pace: float, host: str, port: int) -> None:
    from picows import ws_create_server

    loop = asyncio.get_running_loop()
    text = await asyncio.to_thread(recording.read_text, encoding="utf-8")
    replayer = Replayer(json.loads(text), pace, loop)
    listener = make_listener(replayer)
    server = await ws_create_server(lambda _request: listener(), host, port)
    bound = server.sockets[0].getsockname()[1]
    print(f"ws://{host}:{bound}/v1/realtime", flush=True)
    await server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.replay_provider")
    parser.add_argument("--recording", required=True, help="made by bench.replay_provider.capture")
    parser.add_argument("--pace", type=float, default=2.0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--capture", action="store_true", help="record --recording first")
    args = parser.parse_args(argv)
    recording = Path(args.recording)
    if args.capture:
        asyncio.run(capture(recording, recording.parent))
        return 0
    run_on("uvloop", serve(recording, args.pace, args.host, args.port))  # both: `fast` extra
    return 0


if __name__ == "__main__":
    sys.exit(main())
