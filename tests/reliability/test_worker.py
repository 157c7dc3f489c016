"""The worker: exact admission (S29), rate limit, health/metrics, graceful drain on SIGTERM.

Real sockets: a small gated WebSocket endpoint (token check like the playground/Twilio ones,
each call echoes until the client hangs up) served with the worker as its `ConnectionGate`.
The wiring into `vocalis serve` is tested separately (test_serve_worker.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from email.message import Message
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse, Response
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from vocalis.transports.web import (
    CallRegistry,
    CallSocket,
    TrustedProxies,
    WebServer,
    call_route,
    request_target,
)
from vocalis.worker import (
    ADMIN_PATHS,
    Admission,
    AttemptLimiter,
    Lease,
    LoopLagMonitor,
    Refusal,
    Worker,
)
from vocalis.worker.worker import drain_on

TOKEN = "s3cret-token"


# --------------------------------------------------------------------------- pure parts


def test_admission_is_exact_and_says_why() -> None:
    admission = Admission(max_sessions=1)
    first = admission.admit()
    second = admission.admit()
    assert isinstance(first, Lease)
    assert isinstance(second, Refusal) and second.reason == "at_capacity"
    assert "at capacity (1/1 calls)" in second.message and second.retry_after_s == 1
    first.release()
    first.release()  # idempotent
    assert admission.live == 0 and admission.counts().finished == 1
    third = admission.admit()
    assert isinstance(third, Lease)
    idle: list[str] = []
    admission.on_idle(lambda: idle.append("idle"))
    admission.start_draining()
    refused = admission.admit()
    assert isinstance(refused, Refusal) and refused.reason == "draining"
    assert refused.retry_after_s is None
    assert idle == []
    third.release()
    assert idle == ["idle"]
    assert admission.counts().refused == {"at_capacity": 1, "draining": 1}
    with pytest.raises(ValueError, match="at least 1"):
        Admission(0)


def test_attempt_limiter_allows_a_burst_then_the_rate() -> None:
    now = [100.0]
    limiter = AttemptLimiter(rate_per_s=2.0, burst=3, max_clients=2, monotonic=lambda: now[0])
    assert [limiter.check("a").allowed for _ in range(4)] == [True, True, True, False]
    assert limiter.check("a").retry_after_s == 1
    assert limiter.check("b").allowed  # another client is not affected
    now[0] += 0.5  # one token back
    assert limiter.check("a").allowed and not limiter.check("a").allowed
    limiter.check("c")  # a third address: the least recently seen one is forgotten
    assert len(limiter) == 2
    assert limiter.refused_total == 3


async def test_lag_monitor_measures_late_wakeups() -> None:
    clock = [0.0]
    lateness = iter([0.0, 0.003, 0.150, 0.0])

    async def sleep(seconds: float) -> None:
        clock[0] += seconds + next(lateness)
        if clock[0] > 1.0:
            raise asyncio.CancelledError

    monitor = LoopLagMonitor(0.25, window_s=0.6, monotonic=lambda: clock[0], sleep=sleep)
    with pytest.raises(asyncio.CancelledError):
        await monitor.run()
    assert monitor.histogram.count == 3
    assert monitor.max_recent_s == pytest.approx(0.150)
    cumulative = dict(monitor.histogram.cumulative())
    assert cumulative[0.001] == 1 and cumulative[0.005] == 2 and cumulative[0.25] == 3
    monitor.record(2.0, 0.0)  # the 150 ms sample leaves the 0.6 s window
    assert monitor.max_recent_s == pytest.approx(0.0)


def check_prometheus(text: str) -> dict[str, float]:
    """Parse with prometheus-client's own text parser; returns {sample (with labels): value}."""
    assert text.endswith("\n")
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        assert family.type in ("gauge", "counter", "histogram"), family.name
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sample.labels.items())
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


# --------------------------------------------------------------------------- endpoint


@asynccontextmanager
async def endpoint(
    worker: Worker, trusted: TrustedProxies | None = None
) -> AsyncIterator[tuple[WebServer, str]]:
    """A gated echo endpoint at ws://127.0.0.1:PORT/call?token=..."""

    def authorize(connection: HTTPConnection) -> Response | None:
        if f"token={TOKEN}" not in request_target(connection):
            return PlainTextResponse("Forbidden: missing or wrong token\n", 403)
        return None

    async def call(ws: CallSocket) -> None:
        async for message in ws:
            await ws.send(message)

    calls = CallRegistry()
    server = await WebServer.start(
        [
            call_route("/call", call, authorize=authorize, calls=calls, gate=worker),
            *list(worker.admin_routes()),
        ],
        attempt=worker.check_attempt,
        unlimited_paths=ADMIN_PATHS,
        trusted=trusted,
        calls=calls,
    )
    try:
        yield server, server.authority
    finally:
        await server.aclose()


async def refused(url: str) -> Any:
    with pytest.raises(InvalidStatus) as info:
        async with connect(url):
            pass
    return info.value.response


async def echo(ws: ClientConnection, text: str = "hello") -> None:
    await ws.send(text)
    assert await asyncio.wait_for(ws.recv(), 10) == text


def http_get(url: str) -> tuple[int, Message, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, reply.headers, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


# --------------------------------------------------------------------------- S29 admission


async def test_s29_two_calls_100ms_apart_exactly_one_accepted() -> None:
    async with Worker(max_sessions=1) as worker, endpoint(worker) as (_server, addr):
        url = f"ws://{addr}/call?token={TOKEN}"
        async with connect(url) as first:
            await echo(first)  # the first call is admitted and live
            await asyncio.sleep(0.1)  # S29's spacing (the stimulus, not a wait for state)
            response = await refused(url)
            assert response.status_code == 503
            assert response.headers["X-Vocalis-Refusal"] == "at_capacity"
            assert response.headers["Retry-After"] == "1"
            assert b"at capacity (1/1 calls)" in response.body
            await echo(first)  # the running call is untouched
            assert worker.live_sessions == 1
        # The slot is free again once the first call hung up.
        await wait_until(lambda: worker.live_sessions == 0)
        async with connect(url) as again:
            await echo(again)
        assert worker.admission.counts().accepted == 2
        assert worker.admission.counts().refused["at_capacity"] == 1


async def test_s29_simultaneous_calls_exactly_one_accepted() -> None:
    async with Worker(max_sessions=1) as worker, endpoint(worker) as (_server, addr):
        url = f"ws://{addr}/call?token={TOKEN}"

        async def attempt() -> ClientConnection | int:
            try:
                return await connect(url)
            except InvalidStatus as error:
                return error.response.status_code

        results = await asyncio.gather(*(attempt() for _ in range(5)))
        accepted = [r for r in results if not isinstance(r, int)]
        assert len(accepted) == 1
        assert sorted(r for r in results if isinstance(r, int)) == [503] * 4
        await echo(accepted[0])
        await accepted[0].close()


async def test_unauthenticated_attempts_never_take_a_slot() -> None:
    async with Worker(max_sessions=1) as worker, endpoint(worker) as (_server, addr):
        response = await refused(f"ws://{addr}/call?token=wrong")
        assert response.status_code == 403
        assert worker.admission.counts().accepted == 0 and worker.live_sessions == 0
        assert TOKEN.encode() not in response.body


# --------------------------------------------------------------------------- rate limit


async def test_connection_attempts_are_rate_limited_before_the_token_check() -> None:
    worker = Worker(attempt_burst=3, attempts_per_s=0.01)
    async with worker, endpoint(worker) as (_server, addr):
        for _ in range(3):
            assert (await refused(f"ws://{addr}/call?token=guess")).status_code == 403
        response = await refused(f"ws://{addr}/call?token={TOKEN}")
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) >= 1
        assert b"Too Many Requests" in response.body
        # Health checks and metrics are never rate limited (load balancers poll them).
        status, _, _ = await asyncio.to_thread(http_get, f"http://{addr}/healthz")
        assert status == 200


async def test_forwarded_for_is_used_only_from_trusted_proxies() -> None:
    worker = Worker(attempt_burst=1, attempts_per_s=0.01)
    # The test client connects from 127.0.0.1: it plays the trusted proxy here.
    async with worker, endpoint(worker, TrustedProxies(["127.0.0.1"])) as (_server, addr):
        url = f"ws://{addr}/call?token={TOKEN}"
        for client in ("10.0.0.1", "10.0.0.2"):
            async with connect(url, additional_headers={"X-Forwarded-For": client}) as ws:
                await echo(ws)
        with pytest.raises(InvalidStatus) as info:
            async with connect(url, additional_headers={"X-Forwarded-For": "10.0.0.1"}):
                pass
        assert info.value.response.status_code == 429
        # A client cannot dodge the limit by prepending its own X-Forwarded-For entry: the
        # right-most entry that is not a trusted proxy counts.
        spoofed = {"X-Forwarded-For": "1.2.3.4, 10.0.0.1"}
        with pytest.raises(InvalidStatus) as info:
            async with connect(url, additional_headers=spoofed):
                pass
        assert info.value.response.status_code == 429
        # X-Real-IP is never believed (a proxy that does not set it passes the client's own).
        with pytest.raises(InvalidStatus) as info:
            headers = {"X-Forwarded-For": "10.0.0.1", "X-Real-IP": "10.0.0.9"}
            async with connect(url, additional_headers=headers):
                pass
        assert info.value.response.status_code == 429


# --------------------------------------------------------------------------- health, metrics


async def test_healthz_livez_and_metrics() -> None:
    async with Worker(max_sessions=1) as worker, endpoint(worker) as (_server, addr):
        status, _, body = await asyncio.to_thread(http_get, f"http://{addr}/healthz")
        assert status == 200 and '"status": "ok"' in body
        async with connect(f"ws://{addr}/call?token={TOKEN}") as ws:
            await echo(ws)
            status, _, body = await asyncio.to_thread(http_get, f"http://{addr}/healthz")
            assert status == 503 and '"status": "full"' in body
            status, headers, text = await asyncio.to_thread(http_get, f"http://{addr}/metrics")
            assert status == 200
            assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
            samples = check_prometheus(text)
            assert samples["vocalis_live_sessions"] == 1
            assert samples["vocalis_max_sessions"] == 1
            assert samples["vocalis_draining"] == 0
            assert samples['vocalis_sessions_refused_total{reason="at_capacity"}'] == 0
            assert samples['vocalis_errors_total{kind="session_fatal"}'] == 0
            assert samples["process_resident_memory_bytes"] > 0
            assert (
                samples['vocalis_event_loop_lag_seconds_bucket{le="+Inf"}']
                == (samples["vocalis_event_loop_lag_seconds_count"])
            )
        status, _, _ = await asyncio.to_thread(http_get, f"http://{addr}/livez")
        assert status == 200


async def test_separate_admin_port() -> None:
    async with Worker() as worker:
        admin = await worker.serve_admin("127.0.0.1", 0)
        port = admin.port
        try:
            status, _, text = await asyncio.to_thread(http_get, f"http://127.0.0.1:{port}/metrics")
            assert status == 200 and check_prometheus(text)["vocalis_live_sessions"] == 0
            status, _, _ = await asyncio.to_thread(http_get, f"http://127.0.0.1:{port}/other")
            assert status == 404
        finally:
            await admin.aclose()


async def test_session_errors_are_counted() -> None:
    from vocalis.runtime.events import ErrorEvent, EventEmitter
    from vocalis.utils.clock import ManualClock

    class FakeSession:
        def __init__(self) -> None:
            self.clock = ManualClock()
            self.emitter = EventEmitter()
            self.on = self.emitter.on

    worker = Worker()
    session = FakeSession()
    worker.observe(session)
    session.emitter.emit(ErrorEvent("rejected truncate", code="invalid_value"))
    session.emitter.emit(ErrorEvent("quota", code="insufficient_quota", recoverable=False))
    assert worker.errors.counts["session_error"] == 1
    assert worker.errors.counts["session_fatal"] == 1


# --------------------------------------------------------------------------- drain


async def wait_until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - polls state owned by other tasks
            await asyncio.sleep(0.005)


async def test_sigterm_drain_refuses_new_calls_and_lets_running_calls_finish() -> None:
    async with Worker(max_sessions=4) as worker, endpoint(worker) as (server, addr):
        worker.install_signal_handlers((signal.SIGTERM,))
        url = f"ws://{addr}/call?token={TOKEN}"
        stopped = asyncio.create_task(drain_on(worker, server))
        async with connect(url) as running:
            await echo(running)
            os.kill(os.getpid(), signal.SIGTERM)
            await wait_until(lambda: worker.draining)
            response = await refused(url)
            assert response.status_code == 503
            assert response.headers["X-Vocalis-Refusal"] == "draining"
            assert b"shutting down" in response.body and "Retry-After" not in response.headers
            status, _, body = await asyncio.to_thread(http_get, f"http://{addr}/healthz")
            assert status == 503 and '"status": "draining"' in body
            # The running call goes on, undisturbed, for as long as it needs.
            for k in range(5):
                await echo(running, f"still talking {k}")
            assert not stopped.done()
        await asyncio.wait_for(stopped, 10)  # the last call ended: the worker stops
        assert worker.live_sessions == 0 and not worker.drain_timed_out
        assert worker.admission.counts().refused["draining"] == 1


async def test_drain_timeout_closes_what_is_left() -> None:
    async with Worker(drain_timeout_s=0.2) as worker, endpoint(worker) as (server, addr):
        async with connect(f"ws://{addr}/call?token={TOKEN}") as stuck:
            await echo(stuck)
            worker.begin_drain("test")
            await asyncio.wait_for(drain_on(worker, server), 10)
            assert worker.drain_timed_out
            with pytest.raises(ConnectionClosed) as info:
                await asyncio.wait_for(stuck.recv(), 10)
            assert info.value.rcvd is not None and info.value.rcvd.code == 1001
        await wait_until(lambda: worker.live_sessions == 0)


async def test_second_signal_stops_at_once() -> None:
    async with (
        Worker(drain_timeout_s=3600) as worker,
        endpoint(worker) as (server, addr),
        connect(f"ws://{addr}/call?token={TOKEN}") as ws,
    ):
        await echo(ws)
        worker.begin_drain("SIGTERM")
        assert not worker._stop_event().is_set()
        worker.begin_drain("SIGINT")
        await asyncio.wait_for(drain_on(worker, server), 10)
        assert worker.drain_timed_out


async def test_drain_with_no_calls_stops_immediately() -> None:
    # "Immediately" as an order, not a duration: the worker is stopped by begin_drain itself,
    # before any loop turn and with the drain deadline an hour away.
    async with Worker(drain_timeout_s=3600) as worker, endpoint(worker) as (server, _addr):
        worker.begin_drain("test")
        assert worker._stop_event().is_set()
        await asyncio.wait_for(drain_on(worker, server), 5)
        assert worker.draining and worker.live_sessions == 0 and not worker.drain_timed_out
