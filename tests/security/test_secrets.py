"""The API key never appears in anything a run leaves behind.

A full `vocalis run` (subprocess, the real CLI) against a sim-server that *requires* the key,
with every logger at DEBUG (the WebSocket library's handshake headers included), on each
provider socket backend (`websockets` logs the handshake headers, `picows` does not), a scripted
preamble + tool call + answer, and every output written: history, events, recording, timeline,
stdout/stderr, the debug log, the sim-server's own JSONL log. Then every byte of every file is
searched for the key (and for a long fragment of it). A second run fails on purpose (the
server refuses the key) to cover the error path.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from websockets.sync.server import serve as sync_serve

from vocalis.audio.espeak import synthesize
from vocalis.audio.frame import AudioFrame
from vocalis.audio.wav import write_wav
from vocalis.providers.wsclient import BACKEND_ENV, SocketBackend
from vocalis.sim.server import run_sim_server_in_thread

ROOT = Path(__file__).resolve().parents[2]
FAKE_KEY = "sk-proj-FAKEvocalisSECRET0123456789abcdefXYZ"
FRAGMENT = FAKE_KEY[8:28]

RUNNER = """
import logging, sys
logging.basicConfig(level=logging.DEBUG, filename=sys.argv[1],
                    format="%(asctime)s %(name)s %(levelname)s %(message)s")
from vocalis.cli import main
sys.exit(main(sys.argv[2:]))
"""

SCENARIO = """
responses:
  - user_transcript: What is the weather in Paris?
    items:
      - say: Let me check the weather for you.
      - call: get_weather
        arguments: {city: Paris}
  - items:
      - say: "It is {result[sky]} in Paris, {result[temperature_c]} degrees."
"""


def caller_wav(path: Path) -> None:
    clip = synthesize("What is the weather in Paris?", sample_rate=24000)
    samples = np.concatenate(
        [np.asarray(clip.samples, dtype=np.int16), np.zeros(24000 * 2, dtype=np.int16)]
    )
    write_wav(path, AudioFrame(samples, 24000))


def run_cli(
    tmp: Path, url: str, extra: list[str], backend: SocketBackend | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENAI_API_KEY": FAKE_KEY, "PYTHONUNBUFFERED": "1"}
    if backend is not None:
        env[BACKEND_ENV] = backend
    # -vvv: every library at DEBUG (the CLI sets the root level; the debug log keeps all).
    argv = ["run", "-vvv", *extra, "--realtime-url", url]
    return subprocess.run(
        [sys.executable, "-c", RUNNER, str(tmp / "debug.log"), *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def leaks(tmp: Path, *texts: str) -> list[str]:
    found = []
    for path in sorted(tmp.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            for needle in (FAKE_KEY, FRAGMENT):
                if needle.encode() in data:
                    found.append(f"{path.name} contains {needle[:6]}...")
    for index, text in enumerate(texts):
        for needle in (FAKE_KEY, FRAGMENT):
            if needle in text:
                found.append(f"output #{index} contains {needle[:6]}...")
    return found


@pytest.mark.parametrize("backend", ["websockets", "picows"])
def test_full_run_leaves_no_trace_of_the_key(tmp_path: Path, backend: SocketBackend) -> None:
    (tmp_path / "scenario.yaml").write_text(SCENARIO)
    caller_wav(tmp_path / "caller.wav")
    sim_log = tmp_path / "sim.jsonl"
    with run_sim_server_in_thread(
        scenario=str(tmp_path / "scenario.yaml"), pace=4.0, log_path=str(sim_log)
    ) as sim:
        done = run_cli(
            tmp_path,
            sim.url,
            [
                "examples/assistant_with_tools.py:agent",
                "--input",
                str(tmp_path / "caller.wav"),
                "--record",
                str(tmp_path / "record.wav"),
                "--history",
                str(tmp_path / "history.json"),
                "--events",
                str(tmp_path / "events.jsonl"),
                "--timeline",
                str(tmp_path / "timeline.html"),
                "--max-seconds",
                "90",
            ],
            backend,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    history = (tmp_path / "history.json").read_text()
    assert "get_weather" in history and "Paris" in history  # the run really happened
    debug = (tmp_path / "debug.log").read_text()
    assert "vocalis.providers.openai" in debug  # the provider socket logged at DEBUG ...
    if backend == "websockets":  # ... and this library logs the handshake headers ...
        assert "Authorization" in debug
        assert "<redacted>" in debug  # ... with the key redacted
    assert sim_log.stat().st_size > 0
    assert leaks(tmp_path, done.stdout, done.stderr) == []


def test_refused_key_error_path_leaves_no_trace_of_the_key(tmp_path: Path) -> None:
    caller_wav(tmp_path / "caller.wav")

    def refuse(connection, request):  # type: ignore[no-untyped-def]
        # The real API answers a bad key with 401 and a message naming a masked key.
        return connection.respond(401, "Incorrect API key provided.\n")

    with sync_serve(lambda ws: None, "127.0.0.1", 0, process_request=refuse) as server:
        port = server.socket.getsockname()[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            done = run_cli(
                tmp_path,
                f"ws://127.0.0.1:{port}/v1/realtime",
                [
                    "examples/minimal_agent.py:agent",
                    "--input",
                    str(tmp_path / "caller.wav"),
                    "--history",
                    str(tmp_path / "history.json"),
                    "--max-seconds",
                    "30",
                ],
            )
        finally:
            server.shutdown()
    assert done.returncode != 0
    assert "401" in done.stderr or "key" in done.stderr.lower()
    assert leaks(tmp_path, done.stdout, done.stderr) == []
