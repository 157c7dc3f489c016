"""`vocalis serve --workers 2` as an operator runs it: real processes, real signals, loopback.

One pool (two workers, `--max-sessions 1` for the whole pool) goes through its life:

* the printed URL (its random token) works on every worker;
* the limit is the pool's: with one call running on worker X, a call that only worker Y can
  accept (X is stopped with SIGSTOP, so it cannot accept) is refused with the same 503 as one
  process gives — a per-process limit would have let it in;
* a worker killed with SIGKILL is logged with its signal and replaced; the call it held no
  longer counts against the limit;
* both workers take calls (the second call is accepted by the other worker);
* with every worker frozen, the supervisor still answers /healthz and /livez on the admin port;
* one `/metrics` scrape shows the pool's sums (the dead worker's accepted call included);
* SIGTERM to the supervisor drains: new calls are refused, the running call goes on to its
  end, its history is written, every worker exits 0 and so does the supervisor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from phone_support import Phone, http_get, metric, refused, start_phone_server
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from serve_support import ServeOutput, kill_if_running

pytestmark = pytest.mark.timeout(300)

CONNECTED = r"call (\d+) connected \(twilio; worker (\d+), pid (\d+)\)"


def _state(pid: int) -> str:
    """The process state letter from /proc (T: stopped)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0]


@contextlib.contextmanager
def stopped(pid: int) -> Iterator[None]:
    """Worker `pid` frozen (SIGSTOP) for the block: it cannot accept a connection."""
    os.kill(pid, signal.SIGSTOP)
    try:
        for _ in range(1000):  # signal delivery is asynchronous: wait until it took effect
            if _state(pid) == "T":
                break
            time.sleep(0.001)
        else:
            raise AssertionError(f"pid {pid} did not stop")
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


async def expect(out: ServeOutput, pattern: str, start: int) -> tuple[list[str], int]:
    found, after = await asyncio.to_thread(out.expect, pattern, start)
    return [found.group(0), *found.groups()], after


async def pool_life(out: ServeOutput, url: str, admin: str, pos: int, pid: int) -> str:
    """The scenario of the module doc; returns the number of the drained call."""
    ws_a = await connect(url)
    phone_a = Phone(ws_a)
    await phone_a.start()
    found, pos = await expect(out, CONNECTED, pos)
    first_worker, first_pid = found[2], int(found[3])
    await phone_a.say("Hello, can you hear me?")
    await phone_a.answered()

    # The pool's limit: only the other worker can take this call, and it refuses it.
    call_port = "http://" + url.split("/")[2]
    with stopped(first_pid):
        response = await refused(url)
        assert response.status_code == 503
        assert response.headers["X-Vocalis-Refusal"] == "at_capacity"
        assert b"at capacity (1/1 calls)" in response.body
        status, body = await asyncio.to_thread(http_get, call_port + "/healthz")
    health = json.loads(body)  # the other worker's answer: the pool's counts, its own
    assert status == 503 and health["status"] == "full" and health["live_sessions"] == 1
    assert str(health["worker"]["index"]) != first_worker
    assert health["worker"]["live_sessions"] == 0

    # A killed worker is logged, replaced, and its call leaves the count.
    os.kill(first_pid, signal.SIGKILL)
    with contextlib.suppress(ConnectionClosed):
        await asyncio.wait_for(phone_a.reader, 30)
    killed = rf"worker {first_worker} \(pid {first_pid}\) killed by SIGKILL; 1 call\(s\) lost"
    _, pos = await expect(out, killed, pos)
    found, pos = await expect(out, rf"worker {first_worker} \(pid (\d+)\) ready", pos)
    replacement = int(found[1])
    assert replacement != first_pid

    # The next call goes to the other worker: both have taken calls.
    with stopped(replacement):
        ws_c = await connect(url)
        phone_c = Phone(ws_c)
        await phone_c.start()  # the call (and its "connected" line) starts with this
        found, pos = await expect(out, CONNECTED, pos)
        other_pid = int(found[3])
        # Every worker frozen: the supervisor still answers the probes on the admin port.
        with stopped(other_pid):
            status, body = await asyncio.to_thread(http_get, admin + "/healthz")
            assert (status, json.loads(body)["status"]) == (503, "full")
            status, body = await asyncio.to_thread(http_get, admin + "/livez")
            assert (status, json.loads(body)) == (200, {"status": "alive", "workers": 2})
    async with ws_c:
        assert found[2] != first_worker
        call_c = found[1]
        await phone_c.say("Hello again.")
        await phone_c.answered()

        # One scrape: the pool's sums (call A, accepted by the killed worker, included).
        _, text = await asyncio.to_thread(http_get, admin + "/metrics")
        assert metric(text, "vocalis_sessions_accepted_total") == 2
        assert metric(text, "vocalis_sessions_finished_total") == 1
        assert metric(text, 'vocalis_sessions_refused_total{reason="at_capacity"}') == 1
        assert metric(text, "vocalis_live_sessions") == 1
        assert metric(text, "vocalis_worker_starts_total") == 3
        # Admission comes from the table alone (the workers' own copies are not mirrored).
        assert len(re.findall(r"^vocalis_sessions_accepted_total ", text, re.MULTILINE)) == 1

        # SIGTERM: every worker drains; the running call goes on to its end.
        os.kill(pid, signal.SIGTERM)
        _, mark = await expect(out, r"^draining \(SIGTERM\)", pos)
        _, after = await expect(out, r"draining \(worker \d, pid \d+\) \(SIGTERM\)", mark)
        await expect(out, r"draining \(worker \d, pid \d+\) \(SIGTERM\)", after)
        response = await refused(url)
        assert response.status_code == 503
        assert response.headers["X-Vocalis-Refusal"] == "draining"
        await phone_c.say("Are you still there?")
        await phone_c.answered()
        await phone_c.hang_up()
    await expect(out, rf"call {call_c}\b.* ended; wrote", pos)
    return call_c


def test_pool_limit_restart_metrics_and_drain(tmp_path: Path) -> None:
    server = start_phone_server(tmp_path, "--workers", "2")
    proc, out = server.proc, server.output
    try:
        _, pos = out.expect(r"^2 workers ready")
        drained = asyncio.run(pool_life(out, server.stream_url, server.admin, pos, proc.pid))
        out.expect(r"^stopped", pos)
        proc.wait(timeout=60)
    finally:
        kill_if_running(proc)
    text = out.text()
    assert proc.returncode == 0, text
    assert text.count("exited with code 0") == 2, text
    # Only the drained call left files (the killed worker's call died with it).
    assert [path.name for path in tmp_path.iterdir()] == [f"call-{drained}"]
    items = json.loads((tmp_path / f"call-{drained}" / "history.json").read_text())["items"]
    answers = [item for item in items if item.get("role") == "assistant"]
    assert len(answers) >= 2 and all(a["played_ms"] > 0 for a in answers[:2])
