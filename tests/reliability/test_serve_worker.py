"""`vocalis serve` as a fleet member, as an operator runs it (a real process, real signals).

S29 admission with `--max-sessions 1` (two phone calls 100 ms apart: exactly one accepted,
the other refused with a reason), health and metrics on the admin port, the connection-attempt
rate limit, then SIGTERM: new calls are refused while the running call goes on — the caller
still gets answers — and when it hangs up, its history is written and the process exits 0.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest
from phone_support import Phone, http_get, metric, refused, start_phone_server
from websockets.asyncio.client import connect

from serve_support import kill_if_running, read_until, start_serve

pytestmark = pytest.mark.timeout(180)


def test_serve_admission_and_sigterm_drain(tmp_path: Path) -> None:
    server = start_phone_server(tmp_path)
    proc, output, stream_url, admin = server.proc, server.output, server.stream_url, server.admin
    try:
        _, ready = output.expect(r"at most 1 calls at once")

        async def scenario() -> None:
            async with connect(stream_url) as ws:
                phone = Phone(ws)
                await phone.start()
                await phone.say("Hello, can you hear me?")
                await phone.answered()

                # S29: a second call 100 ms later is refused, clearly (the sleep is the
                # scenario's spacing; the first call is answered, so it holds the slot).
                await asyncio.sleep(0.1)
                response = await refused(stream_url)
                assert response.status_code == 503
                assert response.headers["X-Vocalis-Refusal"] == "at_capacity"
                assert b"at capacity (1/1 calls)" in response.body
                status, body = await asyncio.to_thread(http_get, admin + "/healthz")
                assert status == 503 and '"full"' in body
                _, text = await asyncio.to_thread(http_get, admin + "/metrics")
                assert metric(text, "vocalis_live_sessions") == 1
                assert metric(text, 'vocalis_sessions_refused_total{reason="at_capacity"}') == 1

                # SIGTERM: drain. New calls are refused; the running call goes on.
                proc.send_signal(signal.SIGTERM)
                await asyncio.to_thread(output.expect, r"draining", ready)
                response = await refused(stream_url)
                assert response.status_code == 503
                assert response.headers["X-Vocalis-Refusal"] == "draining"
                status, body = await asyncio.to_thread(http_get, admin + "/healthz")
                assert status == 503 and '"draining"' in body
                await phone.say("Are you still there?")
                await phone.answered()
                assert proc.poll() is None  # still serving the running call
                await phone.hang_up()

        asyncio.run(scenario())
        _, ended = output.expect(r"call 1.* ended; wrote", ready)
        output.expect(r"^stopped", ended)
        proc.wait(timeout=30)
        assert proc.returncode == 0
        items = json.loads((tmp_path / "call-1" / "history.json").read_text())["items"]
        answers = [i for i in items if i.get("role") == "assistant"]
        assert len(answers) >= 2 and all(a["played_ms"] > 0 for a in answers[:2])
        assert not (tmp_path / "call-2").exists()  # the refused calls never started
    except BaseException as failure:
        # Whatever failed (a timeout in the scenario, a refused call, a bad exit, the
        # history), the server's own account is the evidence: attach all it printed.
        kill_if_running(proc)
        failure.add_note(f"server output:\n{output.all_text()}")
        raise
    finally:
        kill_if_running(proc)


@pytest.mark.parametrize("workers", ["1", "2"])
def test_workers_share_a_token_from_the_environment(workers: str) -> None:
    """Behind a load balancer every worker must accept the same Stream URL; a pool of
    workers on one machine never prints it either (nor logs it)."""
    proc = start_serve(
        "examples/minimal_agent.py:agent",
        "--twilio",
        "--port",
        "0",
        "--workers",
        workers,
        "-v",
        env={"VOCALIS_TOKEN": "fleet-token-123456"},
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        url = read_until(proc.stdout, r'Stream url="(\S+)"', lines).group(1)
        # A shared secret from the environment is never printed (stdout is often the log).
        assert url.endswith("/twilio/<VOCALIS_TOKEN>")
        read_until(proc.stdout, r"Ctrl-C to stop" if workers == "1" else r"^2 workers ready", lines)
        from websockets.sync.client import connect as sync_connect

        with sync_connect(url.replace("<VOCALIS_TOKEN>", "fleet-token-123456")) as ws:
            ws.send('{"event": "connected", "protocol": "Call", "version": "1.0.0"}')
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        lines.extend(proc.stdout.readlines())
    finally:
        kill_if_running(proc)
    assert proc.returncode == 0, "".join(lines)
    assert "fleet-token-123456" not in "".join(lines)
