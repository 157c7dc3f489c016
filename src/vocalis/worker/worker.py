"""`Worker`: what makes one `vocalis serve` process a good citizen behind a load balancer.

A call is pinned to the process that accepted it (its realtime session, playback clock and
history live there), so a fleet scales by adding stateless processes behind any standard load
balancer. Each process then needs exactly four things, all here:

* **admission** — `--max-sessions N`: the (N+1)-th concurrent call is refused *at the HTTP
  handshake* with `503 Service Unavailable`, a reason and `Retry-After`, before a WebSocket
  (and a paid realtime session) exists; a load balancer retries it on another worker (S29);
* **a connection-attempt rate limit** per client address: `429 Too Many Requests` before the
  token is even compared (a retry loop or a token-guessing script cannot hog the worker);
* **health and metrics** — `/healthz` (200 while it takes calls, 503 when draining or full:
  the readiness signal), `/livez` (200 while the loop runs: liveness), `/metrics`
  (Prometheus text: live sessions, loop lag, refusals, errors, RSS, fds);
* **graceful drain** on SIGTERM: new calls are refused at once, running calls finish; the
  worker stops when the last call ended, or closes what is left after `drain_timeout_s`.

The worker does not own the endpoints. It is their `ConnectionGate`
(`vocalis.transports.web`): every listener serves its `admin_routes()`, asks `check_attempt()`
before any access rule and `admit()` after it, which keeps the playground and Twilio servers
unaware of fleet concerns and lets any future endpoint join by passing `gate=worker`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from vocalis import telemetry
from vocalis.telemetry.metrics import observe_call
from vocalis.worker.admission import Admission, Lease, Refusal
from vocalis.worker.fleet import FleetPlace
from vocalis.worker.lag import LoopLagMonitor
from vocalis.worker.metrics import CONTENT_TYPE, ErrorCounters, WorkerMetrics
from vocalis.worker.ratelimit import AttemptLimiter

if TYPE_CHECKING:
    from vocalis.telemetry.tracer import Observable
    from vocalis.transports.web import HttpLimits, WebServer

__all__ = ["ADMIN_PATHS", "Closable", "Worker", "drain_on"]

log = logging.getLogger("vocalis.worker")

ADMIN_PATHS = ("/healthz", "/livez", "/metrics")


class Closable(Protocol):
    """A listener `drain_on` closes (a `WebServer`)."""

    def close(self) -> None: ...

    async def wait_closed(self) -> None: ...


def no_store(response: Response) -> Response:
    """Health and metrics answers are about now: never cached by a proxy."""
    response.headers["Cache-Control"] = "no-store"
    return response


def json_response(status: int, payload: dict[str, Any]) -> Response:
    return no_store(Response(json.dumps(payload) + "\n", status, media_type="application/json"))


class Worker:
    """Admission, rate limit, health, metrics and drain for one serving process."""

    def __init__(
        self,
        max_sessions: int | None = None,
        *,
        drain_timeout_s: float = 300.0,
        attempts_per_s: float = 2.0,
        attempt_burst: int = 10,
        lag_interval_s: float = 0.25,
        on_drain: Callable[[str, int], None] | None = None,
        fleet: FleetPlace | None = None,
    ) -> None:
        """`on_drain(why, running_calls)` is told when a drain starts (e.g. to print it).
        In a pool (`vocalis serve --workers N`), `fleet` is this worker's place: admission
        counts against the pool's limit, `/metrics` shows the pool's sums and `/healthz`
        says which worker answered."""
        self.on_drain = on_drain
        self.fleet = fleet
        book = fleet.table.slot(fleet.index) if fleet is not None else None
        self.admission = Admission(max_sessions, book)
        self.limiter = AttemptLimiter(attempts_per_s, attempt_burst)
        self.drain_timeout_s = drain_timeout_s
        self.lag = LoopLagMonitor(lag_interval_s)
        self.errors = ErrorCounters()
        self.started_at = time.time()
        self.metrics = WorkerMetrics(
            self.admission, self.lag, self.errors, self.started_at, fleet=fleet
        )
        self._stop: asyncio.Event | None = None
        self._drain_deadline: asyncio.TimerHandle | None = None
        self._signals: list[signal.Signals] = []
        self.drain_timed_out = False

    # ================================================================= lifecycle

    async def start(self) -> None:
        """Start sampling loop lag (call once the event loop runs)."""
        self._stop_event()
        self.lag.start()
        telemetry.observe_loop_lag(self.lag)
        self.metrics.start()

    def _stop_event(self) -> asyncio.Event:
        if self._stop is None:
            self._stop = asyncio.Event()
        return self._stop

    @property
    def draining(self) -> bool:
        return self.admission.draining

    @property
    def live_sessions(self) -> int:
        return self.admission.live

    def begin_drain(self, why: str = "requested") -> None:
        """Refuse new calls from now on; stop once the running ones ended (or time is up).

        A second call (e.g. a second SIGTERM or Ctrl-C) stops at once: what is still running
        is closed by the endpoints' shutdown (each call's history is still written).
        """
        stop = self._stop_event()
        if self.admission.draining:
            log.warning("second stop request (%s): closing %d running call(s) now", why, self.live)
            self.drain_timed_out = self.admission.live > 0
            stop.set()
            return
        log.info(
            "draining (%s): no new calls; waiting for %d running call(s), at most %g s",
            why,
            self.admission.live,
            self.drain_timeout_s,
        )
        if self.on_drain is not None:
            self.on_drain(why, self.admission.live)
        self.admission.on_idle(stop.set)
        self.admission.start_draining()
        if not stop.is_set():
            loop = asyncio.get_running_loop()
            self._drain_deadline = loop.call_later(self.drain_timeout_s, self._drain_expired)

    @property
    def live(self) -> int:
        return self.admission.live

    def _drain_expired(self) -> None:
        self._drain_deadline = None
        if self.admission.live:
            log.warning(
                "drain timeout (%g s): closing %d running call(s)",
                self.drain_timeout_s,
                self.admission.live,
            )
            self.drain_timed_out = True
        self._stop_event().set()

    async def wait_stopped(self) -> None:
        """Returns once drained (no calls left) or the drain timed out / was forced."""
        await self._stop_event().wait()

    def install_signal_handlers(
        self, signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)
    ) -> None:
        """SIGTERM/SIGINT start a drain (Kubernetes sends SIGTERM before killing a pod)."""
        loop = asyncio.get_running_loop()
        for sig in signals:
            loop.add_signal_handler(sig, self.begin_drain, sig.name)
            self._signals.append(sig)

    async def aclose(self) -> None:
        """Stop the lag sampler, signal handlers, timers and lease watchers."""
        if self._drain_deadline is not None:
            self._drain_deadline.cancel()
            self._drain_deadline = None
        loop = asyncio.get_running_loop()
        for sig in self._signals:
            loop.remove_signal_handler(sig)
        self._signals.clear()
        await self.lag.aclose()
        await self.metrics.aclose()

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ================================================================= calls

    def observe(self, session: Observable) -> None:
        """Count a call's errors and facts (`AgentSession` events) in `/metrics`."""
        from vocalis.runtime.events import ErrorEvent

        def count(event: ErrorEvent) -> None:
            self.errors.add("session_error" if event.recoverable else "session_fatal")

        session.on(ErrorEvent, count)
        observe_call(session, [self.metrics.calls])

    # ================================================================= gate

    def check_attempt(self, client: str) -> Response | None:
        """Before any access rule: a 429 for a client trying too often (guessing is throttled
        too); the client address is the HTTP layer's (trusted proxies applied)."""
        decision = self.limiter.check(client)
        if decision.allowed:
            return None
        return no_store(
            PlainTextResponse(
                "Too Many Requests: slow down connection attempts\n",
                429,
                {"Retry-After": str(decision.retry_after_s)},
            )
        )

    def admit(self) -> Lease | Response:
        """After the endpoint's access rule (an unauthenticated request learns nothing about
        capacity and never takes a slot): a lease, or the 503 refusal."""
        granted = self.admission.admit()
        if isinstance(granted, Refusal):
            return self.refusal_response(granted)
        return granted

    def call_failed(self) -> None:
        self.errors.add("call_failed")

    # ================================================================= HTTP

    @staticmethod
    def refusal_response(refusal: Refusal) -> Response:
        headers: dict[str, str] = {"X-Vocalis-Refusal": refusal.reason}
        if refusal.retry_after_s is not None:
            headers["Retry-After"] = str(refusal.retry_after_s)
        return no_store(
            PlainTextResponse(f"Service Unavailable: {refusal.message}\n", 503, headers)
        )

    def health(self) -> tuple[int, dict[str, Any]]:
        admission = self.admission
        status = "ok" if admission.accepting else "draining" if admission.draining else "full"
        body: dict[str, Any] = {
            "status": status,
            # The calls the limit counts: this process', or in a pool the whole pool's.
            "live_sessions": admission.book.fleet_live,
            "max_sessions": admission.max_sessions,
        }
        if self.fleet is not None:
            # A pool: which worker answered, and its own calls.
            body["worker"] = {
                "index": self.fleet.index,
                "pid": os.getpid(),
                "live_sessions": admission.live,
            }
        return (200 if status == "ok" else 503), body

    def metrics_text(self) -> str:
        return self.metrics.text()

    async def _healthz(self, request: Request) -> Response:
        status, body = self.health()
        return json_response(status, body)

    async def _livez(self, request: Request) -> Response:
        return json_response(200, {"status": "alive"})

    async def _metrics(self, request: Request) -> Response:
        return no_store(Response(self.metrics_text(), media_type=CONTENT_TYPE))

    def admin_routes(self) -> Sequence[BaseRoute]:
        """`/healthz`, `/livez`, `/metrics` (GET/HEAD), served on every port of the worker."""
        return [
            Route("/healthz", self._healthz, methods=["GET"]),
            Route("/livez", self._livez, methods=["GET"]),
            Route("/metrics", self._metrics, methods=["GET"]),
        ]

    async def serve_admin(
        self, host: str = "127.0.0.1", port: int = 0, *, limits: HttpLimits | None = None
    ) -> WebServer:
        """A separate HTTP port with only the admin routes (e.g. for Kubernetes probes)."""
        from vocalis.transports.web import WebServer

        return await WebServer.start(self.admin_routes(), host, port, limits=limits)


async def drain_on(worker: Worker, *servers: Closable) -> None:
    """Serve until the worker stops (drained or timed out), then close `servers`.

    Closing a listener refuses new connections and closes running calls with 1001 (going
    away): each remaining call's transport hangs up and its history is written.
    """
    with contextlib.suppress(asyncio.CancelledError):
        await worker.wait_stopped()
    for server in servers:
        server.close()
    for server in servers:
        await server.wait_closed()
