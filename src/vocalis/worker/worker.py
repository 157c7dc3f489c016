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

The worker does not own the endpoints. It wraps their websockets `process_request` and
connection handler (`gate()` / `wrap_handler()`), which keeps the playground and Twilio
servers unaware of fleet concerns and lets any future endpoint join with two lines.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from vocalis.worker.admission import Admission, Lease, Refusal
from vocalis.worker.lag import LoopLagMonitor
from vocalis.worker.metrics import CONTENT_TYPE, ErrorCounters, render_metrics
from vocalis.worker.ratelimit import AttemptLimiter

if TYPE_CHECKING:
    from vocalis.runtime.session import AgentSession

__all__ = ["ADMIN_PATHS", "Handler", "ProcessRequest", "Worker"]

log = logging.getLogger("vocalis.worker")

ProcessRequest = Callable[[ServerConnection, Request], "Response | None"]
Handler = Callable[[ServerConnection], Awaitable[None]]

ADMIN_PATHS = ("/healthz", "/livez", "/metrics")


def _response(
    status: int, body: str, content_type: str, extra: dict[str, str] | None = None
) -> Response:
    data = body.encode("utf-8")
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(data))),
            ("Cache-Control", "no-store"),
        ]
    )
    for name, value in (extra or {}).items():
        headers[name] = value
    return Response(status, HTTPStatus(status).phrase, headers, data)


def _json(status: int, payload: dict[str, Any], extra: dict[str, str] | None = None) -> Response:
    return _response(status, json.dumps(payload) + "\n", "application/json", extra)


class Worker:
    """Admission, rate limit, health, metrics and drain for one serving process."""

    def __init__(
        self,
        max_sessions: int | None = None,
        *,
        drain_timeout_s: float = 300.0,
        attempts_per_s: float = 2.0,
        attempt_burst: int = 10,
        trust_forwarded_for: bool = False,
        lag_interval_s: float = 0.25,
        on_drain: Callable[[str, int], None] | None = None,
    ) -> None:
        """`on_drain(why, running_calls)` is told when a drain starts (e.g. to print it)."""
        self.on_drain = on_drain
        self.admission = Admission(max_sessions)
        self.limiter = AttemptLimiter(attempts_per_s, attempt_burst)
        self.trust_forwarded_for = trust_forwarded_for
        self.drain_timeout_s = drain_timeout_s
        self.lag = LoopLagMonitor(lag_interval_s)
        self.errors = ErrorCounters()
        self.started_at = time.time()
        self._leases: dict[ServerConnection, Lease] = {}
        self._watchers: set[asyncio.Task[None]] = set()
        self._stop: asyncio.Event | None = None
        self._drain_deadline: asyncio.TimerHandle | None = None
        self._signals: list[signal.Signals] = []
        self.drain_timed_out = False

    # ================================================================= lifecycle

    async def start(self) -> None:
        """Start sampling loop lag (call once the event loop runs)."""
        self._stop_event()
        self.lag.start()

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
        watchers = list(self._watchers)
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        for lease in list(self._leases.values()):
            lease.release()
        self._leases.clear()

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ================================================================= calls

    def observe(self, session: AgentSession) -> None:
        """Count a call's errors (`ErrorEvent`s of an `AgentSession`) in `/metrics`."""
        from vocalis.runtime.events import ErrorEvent

        def count(event: ErrorEvent) -> None:
            self.errors.add("session_error" if event.recoverable else "session_fatal")

        session.on(ErrorEvent, count)

    def client_key(self, connection: ServerConnection, request: Request) -> str:
        if self.trust_forwarded_for:
            # Only what *our* proxy wrote counts: X-Real-IP, else the last X-Forwarded-For
            # entry (earlier entries come from the client and are trivially spoofed).
            real = request.headers.get("X-Real-IP")
            if real:
                return real.strip()
            forwarded = request.headers.get("X-Forwarded-For")
            if forwarded:
                return forwarded.split(",")[-1].strip()
        address = connection.remote_address
        if isinstance(address, tuple) and address:
            return str(address[0])
        return str(address)

    def gate(self, inner: ProcessRequest) -> ProcessRequest:
        """Wrap an endpoint's `process_request`: admin routes, rate limit, auth, admission.

        Order matters: the rate limit comes before the endpoint's own token check (guessing
        is throttled too), admission after it (an unauthenticated request learns nothing
        about capacity and never takes a slot).
        """

        def process_request(connection: ServerConnection, request: Request) -> Response | None:
            path = request.path.split("?", 1)[0]
            if path in ADMIN_PATHS:
                return self.admin_response(path)
            decision = self.limiter.check(self.client_key(connection, request))
            if not decision.allowed:
                return _response(
                    429,
                    "Too Many Requests: slow down connection attempts\n",
                    "text/plain; charset=utf-8",
                    {"Retry-After": str(decision.retry_after_s)},
                )
            answer = inner(connection, request)
            if answer is not None:
                return answer  # refused by the endpoint, or a plain HTTP page
            granted = self.admission.admit()
            if isinstance(granted, Refusal):
                return self.refusal_response(granted)
            self._hold(connection, granted)
            return None

        return process_request

    def _hold(self, connection: ServerConnection, lease: Lease) -> None:
        """Keep `lease` until the call's handler ends — or the connection dies before it runs."""
        self._leases[connection] = lease

        async def release_when_closed() -> None:
            try:
                await connection.wait_closed()
            finally:
                self._leases.pop(connection, None)
                lease.release()

        task = asyncio.get_running_loop().create_task(release_when_closed(), name="worker-lease")
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    def wrap_handler(self, handler: Handler) -> Handler:
        """Wrap an endpoint's connection handler: the call's slot is freed when it returns."""

        async def wrapped(connection: ServerConnection) -> None:
            try:
                await handler(connection)
            except Exception:
                self.errors.add("call_failed")
                raise
            finally:
                lease = self._leases.pop(connection, None)
                if lease is not None:
                    lease.release()

        return wrapped

    # ================================================================= HTTP

    @staticmethod
    def refusal_response(refusal: Refusal) -> Response:
        extra: dict[str, str] = {"X-Vocalis-Refusal": refusal.reason}
        if refusal.retry_after_s is not None:
            extra["Retry-After"] = str(refusal.retry_after_s)
        return _response(
            503,
            f"Service Unavailable: {refusal.message}\n",
            "text/plain; charset=utf-8",
            extra,
        )

    def health(self) -> tuple[int, dict[str, Any]]:
        admission = self.admission
        status = "ok" if admission.accepting else "draining" if admission.draining else "full"
        body: dict[str, Any] = {
            "status": status,
            "live_sessions": admission.live,
            "max_sessions": admission.max_sessions,
        }
        return (200 if status == "ok" else 503), body

    def metrics_text(self) -> str:
        return render_metrics(self.admission, self.lag, self.errors, started_at=self.started_at)

    def admin_response(self, path: str) -> Response | None:
        if path == "/healthz":
            status, body = self.health()
            return _json(status, body)
        if path == "/livez":
            return _json(200, {"status": "alive"})
        if path == "/metrics":
            return _response(200, self.metrics_text(), CONTENT_TYPE)
        return None

    async def serve_admin(self, host: str = "127.0.0.1", port: int = 0) -> Server:
        """A separate HTTP port with only the admin routes (e.g. for Kubernetes probes)."""

        def process_request(connection: ServerConnection, request: Request) -> Response:
            answer = self.admin_response(request.path.split("?", 1)[0])
            if answer is None:
                return _response(404, "Not found\n", "text/plain; charset=utf-8")
            return answer

        async def refuse(connection: ServerConnection) -> None:  # never reached
            await connection.close(1008)

        return await serve(refuse, host, port, process_request=process_request)


async def drain_on(worker: Worker, *servers: Server) -> None:
    """Serve until the worker stops (drained or timed out), then close `servers`.

    Closing a websockets server refuses new handshakes and closes open connections with
    1001 (going away): each remaining call's transport hangs up and its history is written.
    """
    with contextlib.suppress(asyncio.CancelledError):
        await worker.wait_stopped()
    for server in servers:
        server.close()
    for server in servers:
        await server.wait_closed()
