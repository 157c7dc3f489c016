"""The WebSocket shell: handshake rules, concurrency, malformed input, log, CLI, thread helper."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from vocalis.sim.log import read_log
from vocalis.sim.server import SimServer, run_sim_server_in_thread

from .conftest import add_user_text, open_client

REPO = Path(__file__).resolve().parents[2]


async def test_beta_header_is_refused() -> None:
    async with SimServer() as server:
        headers = {"Authorization": "Bearer x", "OpenAI-Beta": "realtime=v1"}
        async with connect(server.url + "?model=gpt-realtime", additional_headers=headers) as ws:
            event = json.loads(await ws.recv())
            assert event["type"] == "error"
            assert event["error"]["code"] == "beta_api_shape_disabled"
            assert event["error"]["message"] == (
                "The Realtime Beta API is no longer supported. Please use /v1/realtime for the "
                "GA API."
            )
            with pytest.raises(ConnectionClosed):
                await ws.recv()
        assert server.sessions[0].server_types() == ["error"]


async def test_other_paths_and_missing_auth_are_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    async with SimServer() as server:
        base = f"ws://{server.host}:{server.port}"
        with pytest.raises(InvalidStatus) as not_found:
            async with connect(base + "/v1/other", additional_headers={"api-key": "k"}):
                pass
        assert not_found.value.response.status_code == 404
        with pytest.raises(InvalidStatus) as unauthorized:
            async with connect(server.url + "?model=gpt-realtime"):
                pass
        assert unauthorized.value.response.status_code == 401
        async with connect(server.url, additional_headers={"api-key": "azure-style"}) as ws:
            event = json.loads(await ws.recv())
            assert event["type"] == "session.created"
            assert event["session"]["model"] == "gpt-realtime"
    # A refusal is the handshake's outcome, not a server error (it used to log an ERROR
    # "returned without completing handshake" per refused client).
    refusals = [r for r in caplog.records if r.name.startswith("uvicorn")]
    assert any("401" in r.getMessage() for r in refusals)
    assert not [r for r in refusals if r.levelno >= logging.WARNING]


async def test_browser_subprotocol_auth() -> None:
    async with SimServer() as server:
        minted = server.client_secrets.create(
            {"session": {"type": "realtime", "model": "gpt-realtime-2"}}, session_id="sess_x"
        )
        protocols = ["realtime", f"openai-insecure-api-key.{minted['value']}"]
        async with connect(server.url + "?model=gpt-realtime-2", subprotocols=protocols) as ws:  # type: ignore[arg-type]
            assert ws.subprotocol == "realtime"
            event = json.loads(await ws.recv())
            assert event["session"]["model"] == "gpt-realtime-2"


async def test_keyless_clients_when_auth_is_off() -> None:
    async with (
        SimServer(require_auth=False) as server,
        connect(server.url + "?model=gpt-realtime") as ws,
    ):
        assert json.loads(await ws.recv())["type"] == "session.created"


async def test_session_created_shape() -> None:
    async with SimServer() as server, open_client(server, manual_turns=False) as client:
        session = client.events[0]["session"]
        assert session["type"] == "realtime" and session["object"] == "realtime.session"
        assert session["id"].startswith("sess_") and len(session["id"]) == 26
        assert session["audio"]["input"]["turn_detection"]["type"] == "server_vad"
        assert session["audio"]["output"] == {
            "format": {"type": "audio/pcm", "rate": 24000},
            "voice": "marin",
            "speed": 1.0,
        }
        assert client.events[0]["event_id"].startswith("event_")


async def test_session_update_errors_echo_event_id_and_keep_session() -> None:
    async with SimServer() as server, open_client(server) as client:
        await client.send(
            "session.update", event_id="cli_1", session={"type": "realtime", "modalities": ["text"]}
        )
        error = (await client.recv())["error"]
        assert error == {
            "type": "invalid_request_error",
            "code": "unknown_parameter",
            "message": "Unknown parameter: 'session.modalities'.",
            "param": "session.modalities",
            "event_id": "cli_1",
        }
        await client.send("session.update", session={"instructions": "hi"})
        error = (await client.recv())["error"]
        assert error["code"] == "missing_required_parameter" and error["param"] == "session.type"
        await client.send(
            "session.update", session={"type": "realtime", "audio": {"output": {"voice": "cedar"}}}
        )
        updated = await client.until("session.updated")
        assert updated["session"]["audio"]["output"]["voice"] == "cedar"
        assert "event_id" in updated and updated["event_id"] != "cli_1"
        await client.send("response.create")
        await client.until("response.done")
        await client.send(
            "session.update", session={"type": "realtime", "audio": {"output": {"voice": "marin"}}}
        )
        error = (await client.recv())["error"]
        assert error["code"] == "cannot_update_voice"
        assert server.sessions[0].config.voice == "cedar"


async def test_malformed_client_frames_keep_the_session_open() -> None:
    async with SimServer() as server, open_client(server) as client:
        await client.ws.send("{not json")
        assert (await client.recv())["error"]["code"] == "invalid_event"
        await client.ws.send(json.dumps({"event_id": "x"}))
        assert (await client.recv())["error"]["message"] == "The 'type' field is missing."
        await client.send("response.explode")
        assert (await client.recv())["error"]["code"] == "invalid_event"
        await client.send("response.create", bogus=1)
        assert (await client.recv())["error"]["message"] == "Unknown parameter: 'bogus'."
        await add_user_text(client, "still here")
        assert not server.sessions[0].closed


async def test_three_concurrent_conversations_do_not_mix(tmp_path: Path) -> None:
    scenario = {"responses": [{"say": "Scripted turn one."}]}
    async with SimServer(scenario=scenario, pace=8.0, log_path=tmp_path / "sim.jsonl") as server:

        async def converse(name: str) -> list[str]:
            async with open_client(server) as client:
                await add_user_text(client, f"I am {name}")
                await client.send("response.create")
                first = await client.until("response.done")
                await add_user_text(client, f"{name} again")
                await client.send("response.create")
                second = await client.until("response.done")
                return [
                    r["response"]["output"][0]["content"][0]["transcript"] for r in (first, second)
                ]

        results = await asyncio.gather(*(converse(n) for n in ("ann", "bob", "cyd")))
        for name, texts in zip(("ann", "bob", "cyd"), results, strict=True):
            # each connection has its own script queue and its own echo
            assert texts == ["Scripted turn one.", f"You said: {name} again"]
        for session in server.sessions:
            await session.wait_for(lambda s: s.closed)
        assert len({s.id for s in server.sessions}) == 3
        for session in server.sessions:
            said = [i.text for i in session.conversation.items]
            name = (said[0] or "").split()[-1]
            assert said == [
                f"I am {name}",
                "Scripted turn one.",
                f"{name} again",
                f"You said: {name} again",
            ]
    records = read_log(tmp_path / "sim.jsonl")
    states = [r for r in records if r["dir"] == "state"]
    assert len(states) == 3
    by_session: dict[str, list[str]] = {}
    for record in records:
        if record["dir"] == "out" and record["event"]["type"] == "response.output_audio.delta":
            assert isinstance(record["event"]["delta"], int)  # byte count, not audio
        by_session.setdefault(record["session"], []).append(record["dir"])
    assert len(by_session) == 3


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_cli_runs_as_a_process(tmp_path: Path, loop: str) -> None:
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    log = tmp_path / "cli.jsonl"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vocalis.cli",
            "sim-server",
            "--port",
            "0",
            "--pace",
            "0",
            "--log",
            str(log),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "VOCALIS_LOOP": loop},
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("ws://127.0.0.1:") and url.endswith("/v1/realtime?model=gpt-realtime")

        async def talk() -> str:
            async with connect(url, additional_headers={"Authorization": "Bearer x"}) as ws:
                while json.loads(await ws.recv())["type"] != "session.created":
                    pass
                await ws.send(json.dumps({"type": "response.create"}))
                while True:
                    event = json.loads(await ws.recv())
                    if event["type"] == "response.done":
                        return str(event["response"]["status"])

        assert asyncio.run(talk()) == "completed"
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=20)
    assert code == 0
    records = read_log(log)
    assert any(r["dir"] == "state" for r in records)
    assert any(r["dir"] == "in" and r["event"]["type"] == "response.create" for r in records)


def test_thread_helper() -> None:
    with run_sim_server_in_thread(scenario={"responses": ["From a thread."]}) as handle:

        async def talk() -> str:
            async with connect(handle.url, additional_headers={"Authorization": "Bearer x"}) as ws:
                await ws.recv()
                await ws.send(json.dumps({"type": "response.create"}))
                while True:
                    event = json.loads(await ws.recv())
                    if event["type"] == "response.done":
                        return str(event["response"]["output"][0]["content"][0]["transcript"])

        assert asyncio.run(talk()) == "From a thread."
    assert handle.server is not None and len(handle.server.sessions) == 1


async def test_a_simulator_bug_becomes_a_server_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from vocalis.sim.protocol import HANDLERS, ProtocolCore

    def broken(core: ProtocolCore, event: dict[str, object]) -> None:
        raise RuntimeError("boom")

    monkeypatch.setitem(HANDLERS, "conversation.item.delete", broken)
    async with SimServer() as server, open_client(server) as client:
        await client.send("conversation.item.delete", item_id="x")
        error = (await client.recv())["error"]
        assert (error["type"], error["code"]) == ("server_error", "server_error")
        await add_user_text(client, "still alive")
        assert not server.sessions[0].closed


def test_cli_reports_an_invalid_scenario(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("responses:\n  - {say: x, typo: 1}\n")
    result = subprocess.run(
        [sys.executable, "-m", "vocalis.cli", "sim-server", "--port", "0", "--scenario", str(bad)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
    )
    assert result.returncode == 2
    assert "invalid scenario" in result.stderr and "typo" in result.stderr


def _sim_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vocalis.cli", "sim-server", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=30,
    )


def test_cli_usage_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = _sim_cli("--port", "0", "--scenario", str(tmp_path / "missing.yaml"))
    assert missing.returncode == 2
    assert (
        missing.stderr.strip() == f"vocalis sim-server: no scenario file at {tmp_path}/missing.yaml"
    )
    bad_port = _sim_cli("--port", "99999")
    assert bad_port.returncode == 2 and "port must be 0-65535" in bad_port.stderr
    assert "Traceback" not in bad_port.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = _sim_cli("--port", str(taken.getsockname()[1]))
    assert busy.returncode == 2 and "cannot serve on 127.0.0.1:" in busy.stderr
    assert "Traceback" not in busy.stderr and len(busy.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("limit", [0, 10])
async def test_recorded_events_can_be_bounded(limit: int) -> None:
    """A long-running server keeps about the newest N events per direction (CLI: none)."""
    fault = {"kind": "unknown_event", "after_event": "response.created"}
    scenario = {"responses": [{"say": "Bounded.", "faults": [fault]}]}
    async with SimServer(scenario=scenario, max_recorded_events=limit) as server:
        async with open_client(server) as client:
            for _ in range(50):
                await client.send("input_audio_buffer.append", audio="AAAA")
            await client.send("response.create")
            await client.until("response.simulated_unknown_event")  # faults still see events
            await client.until("response.done")
        session = server.sessions[0]
    for events in (session.client_events, session.server_events):
        assert len(events) < 2 * limit if limit else events == []
    if limit:
        assert session.client_events[-1]["type"] == "response.create"
        assert session.server_events[-1]["type"] == "response.done"
