"""Scripted faults fire at their protocol positions; the session survives the benign ones."""

from __future__ import annotations

from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from vocalis.sim.log import b64_len
from vocalis.sim.server import SimServer
from vocalis.utils.event_loop import LOOP_ENV
from vocalis.utils.event_loop import run as run_loop

from .conftest import open_client

LINE = "A short scripted answer for the fault tests."


def _with(fault: dict[str, Any]) -> dict[str, Any]:
    return {"responses": [{"say": LINE, "faults": [fault]}]}


async def _read_until_dropped(client: Any) -> None:
    """Read every event until the connection drops abruptly (closed without a close frame)."""
    with pytest.raises(ConnectionClosedError):
        while True:
            await client.recv()


async def _drop_at_position() -> tuple[str, int | None, list[str]]:
    """A drop after the first output item: the client's last event, the server's close code
    and the event types it sent."""
    scenario = _with({"kind": "drop", "after_event": "response.output_item.added"})
    async with SimServer(scenario=scenario) as server, open_client(server) as client:
        await client.send("response.create")
        await _read_until_dropped(client)
        session = await server.wait_for_session()
        await session.wait_for(lambda s: s.closed)
        return str(client.events[-1]["type"]), session.close_code, session.server_types()


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_drop_closes_abruptly_at_position(loop: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # uvloop's transports are not asyncio.Transport subclasses: the drop must still abort.
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    monkeypatch.setenv(LOOP_ENV, loop)
    last, code, sent = run_loop(_drop_at_position())
    assert last == "response.output_item.added"
    assert code == 1006
    assert "response.done" not in sent


async def test_stall_then_resume() -> None:
    scenario = _with({"kind": "stall", "seconds": 0.01, "after_audio_ms": {"item": 0, "ms": 300}})
    async with SimServer(scenario=scenario) as server, open_client(server) as client:
        await client.send("response.create")
        done = await client.until("response.done")
        assert done["response"]["status"] == "completed"
        assert any("fault stall" in n for n in server.sessions[0].notes)


async def test_malformed_frame_then_continue() -> None:
    scenario = _with({"kind": "malformed_frame", "after_event": "response.content_part.added"})
    async with SimServer(scenario=scenario) as server, open_client(server) as client:
        await client.send("response.create")
        await client.until("response.content_part.added")
        assert (await client.recv())["type"] == "<malformed>"
        done = await client.until("response.done")
        assert done["response"]["status"] == "completed"
        assert {"type": None, "raw": client.raw[0]} in server.sessions[0].server_events


async def test_unknown_event() -> None:
    scenario = _with(
        {
            "kind": "unknown_event",
            "event_type": "response.mystery",
            "after_event": "response.created",
        }
    )
    async with SimServer(scenario=scenario) as server, open_client(server) as client:
        await client.send("response.create")
        await client.until("response.created")
        await client.until("rate_limits.updated")  # the beginning of a response, as documented
        assert (await client.recv())["type"] == "response.mystery"
        await client.until("response.done")


async def test_error_event_with_custom_code() -> None:
    scenario = _with(
        {
            "kind": "error",
            "code": "rate_limit_exceeded",
            "message": "Slow down.",
            "error_type": "rate_limit_error",
            "after_event": "response.output_audio.delta",
            "occurrence": 2,
        }
    )
    async with SimServer(scenario=scenario) as server, open_client(server) as client:
        await client.send("response.create")
        error = await client.until("error")
        assert error["error"] == {
            "type": "rate_limit_error",
            "code": "rate_limit_exceeded",
            "message": "Slow down.",
            "param": None,
            "event_id": None,
        }
        assert len(client.of_type("response.output_audio.delta")) == 2
        done = await client.until("response.done")
        assert done["response"]["status"] == "completed"


async def test_fail_ends_response_failed() -> None:
    scenario = _with(
        {
            "kind": "fail",
            "code": "inference_rate_limit_exceeded",
            "error_type": "invalid_request_error",
            "after_audio_ms": {"item": 0, "ms": 200},
        }
    )
    async with SimServer(scenario=scenario) as server, open_client(server) as client:
        await client.send("response.create")
        done = await client.until("response.done")
        response = done["response"]
        assert response["status"] == "failed"
        assert response["status_details"] == {
            "type": "failed",
            "error": {"type": "invalid_request_error", "code": "inference_rate_limit_exceeded"},
        }
        assert response["output"][0]["status"] == "incomplete"
        assert server.sessions[0].active is None
        await client.send("response.create")  # the session goes on
        assert (await client.until("response.done"))["response"]["status"] == "completed"


async def test_incomplete_ends_response_with_the_transcript_ahead_of_the_audio() -> None:
    scenario = {
        "server": {"transcript_lookahead_ms": 600},
        "responses": [
            {
                "say": LINE,
                "faults": [{"kind": "incomplete", "after_audio_ms": {"item": 0, "ms": 400}}],
            }
        ],
    }
    async with SimServer(scenario=scenario) as server, open_client(server) as client:
        await client.send("response.create")
        done = await client.until("response.done")
        response = done["response"]
        assert response["status"] == "incomplete"
        assert response["status_details"] == {"type": "incomplete", "reason": "max_output_tokens"}
        (item,) = server.sessions[0].conversation.items
        assert item.status == "incomplete"
        assert item.audio_ms == 400
        # The transcript ran ahead: it holds a word whose audio starts after the cut.
        assert item.words[-1].start_ms > 400
        assert item.text == "".join(w.text for w in item.words)
        assert server.sessions[0].active is None


async def _expect_expiry(client: Any) -> None:
    error = await client.until("error")
    assert error["error"] == {
        "type": "invalid_request_error",
        "code": "session_expired",
        "message": "Your session hit the maximum duration of 60 minutes.",
        "param": None,
        "event_id": None,
    }
    with pytest.raises(ConnectionClosed) as closed:
        await client.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001


async def test_session_expired_fault() -> None:
    scenario = _with({"kind": "session_expired", "after_event": "response.output_item.added"})
    async with SimServer(scenario=scenario) as server, open_client(server) as client:
        await client.send("response.create")
        await _expect_expiry(client)
        session = server.sessions[0]
        await session.wait_for(lambda s: s.closed)
        assert session.close_code == 1001


async def test_session_max_seconds_timer() -> None:
    async with SimServer(session_max_seconds=0.2) as server, open_client(server) as client:
        await _expect_expiry(client)


async def test_slow_first_byte_holds_response_created() -> None:
    scenario = _with({"kind": "slow_first_byte", "seconds": 60})
    async with SimServer(scenario=scenario) as server, open_client(server) as client:
        await client.send("response.create")
        await client.send("response.create")  # the first one is active though not yet created
        error = await client.recv()
        assert error["error"]["code"] == "conversation_already_has_active_response"
        assert client.of_type("response.created") == []
        await client.send("response.cancel")
        created = await client.recv()
        limits = await client.recv()
        done = await client.recv()
        assert (created["type"], limits["type"], done["type"]) == (
            "response.created",
            "rate_limits.updated",
            "response.done",
        )
        assert done["response"]["status"] == "cancelled"
        assert done["response"]["output"] == []
        assert server.sessions[0].notes[-1].startswith("fault slow_first_byte")


async def test_on_connect_delay() -> None:
    scenario = {"server": {"on_connect_delay_s": 0.05}}
    async with SimServer(scenario=scenario) as server, open_client(server) as client:
        assert client.events[0]["type"] == "session.created"


async def test_drop_after_response_done_fires_between_turns() -> None:
    scenario = _with({"kind": "drop", "after_event": "response.done"})
    async with SimServer(scenario=scenario) as server, open_client(server) as client:
        await client.send("response.create")
        await _read_until_dropped(client)
        assert client.events[-1]["type"] == "response.done"
        session = await server.wait_for_session()
        await session.wait_for(lambda s: s.closed)
        assert session.close_code == 1006


async def _answer_after_reconnect(scenario: dict[str, Any]) -> tuple[list[str], str]:
    """First connection: response.create hits the drop. Second: what does the script answer?"""
    async with SimServer(scenario=scenario) as server:
        async with open_client(server) as client:
            await client.send("response.create")
            await _read_until_dropped(client)
        async with open_client(server) as client:
            await client.send("response.create")
            done = await client.until("response.done")
            transcript = done["response"]["output"][0]["content"][0]["transcript"]
        notes = [n for s in server.sessions for n in s.notes if "fault" in n]
        return notes, transcript


SCRIPT_WITH_DROP = {
    "responses": [
        {"say": LINE, "faults": [{"kind": "drop", "after_event": "response.output_item.added"}]},
        {"say": "The second scripted answer."},
    ]
}


async def test_server_scoped_script_continues_after_reconnect_and_faults_fire_once() -> None:
    scenario = {**SCRIPT_WITH_DROP, "server": {"script_scope": "server"}}
    notes, transcript = await _answer_after_reconnect(scenario)
    assert transcript == "The second scripted answer."
    assert len(notes) == 1  # the drop fired on the first connection only


async def test_connection_scoped_script_restarts_on_every_connection() -> None:
    with pytest.raises(ConnectionClosedError):  # the second connection replays the drop
        await _answer_after_reconnect(SCRIPT_WITH_DROP)


@pytest.mark.parametrize(("item", "ms"), [(0, 37), (0, 250), (0, 801.5), (1, 420)])
async def test_after_audio_ms_fires_exactly_at_the_requested_position(item: int, ms: float) -> None:
    """A chunk boundary is placed at the fault position (chunks are 20-200 ms otherwise)."""
    fault = {"kind": "unknown_event", "after_audio_ms": {"item": item, "ms": ms}}
    scenario = {"responses": [{"items": [{"say": LINE}, {"say": LINE}], "faults": [fault]}]}
    async with SimServer(scenario=scenario) as server, open_client(server) as client:
        await client.send("response.create")
        await client.until("response.done")
    fired = next(
        i for i, e in enumerate(client.events) if e["type"] == "response.simulated_unknown_event"
    )
    sent_ms = sum(
        b64_len(e["delta"]) / 48
        for e in client.events[:fired]
        if e["type"] == "response.output_audio.delta" and e["output_index"] == item
    )
    assert ms <= sent_ms < ms + 1  # whole-ms chunks: at most the rounding of `ms`
    # The split pieces still add up to the whole, unchanged audio.
    speech_ms = server.sessions[0].conversation.items[item].audio_ms
    total = sum(
        b64_len(e["delta"]) / 48
        for e in client.events
        if e["type"] == "response.output_audio.delta" and e["output_index"] == item
    )
    assert total == speech_ms
