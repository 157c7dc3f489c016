"""The `--admin-port` of a worker pool, served by the supervisor itself.

Why the supervisor and not the workers: probes must be answered while the workers are busy.
A worker's event loop carrying many calls (or stuck in a long garbage collection) answers
late, and a readiness or liveness probe that times out takes the whole pod out of service.
The supervisor carries no calls, so its loop is always free, and everything a probe or a
scrape needs is readable without asking any worker: the shared admission table (live calls,
limit, draining) and the pool's metric files. The call ports still serve the same routes
(answered by whichever worker accepted the connection).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from prometheus_client import generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from vocalis.worker.fleet import FleetTable
from vocalis.worker.fleet_metrics import fleet_registry
from vocalis.worker.metrics import CONTENT_TYPE
from vocalis.worker.worker import json_response, no_store

__all__ = ["PoolAdmin"]


class PoolAdmin:
    """`/healthz`, `/livez` and `/metrics` for the whole pool."""

    def __init__(
        self,
        table: FleetTable,
        max_sessions: int | None,
        metrics_dir: str,
        workers_serving: Callable[[], int],
    ) -> None:
        """`workers_serving()`: how many workers are running and ready now."""
        self._table = table
        self._max_sessions = max_sessions
        self._registry = fleet_registry(table, max_sessions, metrics_dir)
        self._serving = workers_serving

    def health(self) -> tuple[int, dict[str, Any]]:
        """200 "ok" while the pool takes calls; 503 "draining", "full" or "no_workers" (every
        worker is starting or being replaced) — the readiness signal."""
        totals = self._table.totals()
        serving = self._serving()
        if totals.draining:
            status = "draining"
        elif serving == 0:
            status = "no_workers"
        elif self._max_sessions is not None and totals.live >= self._max_sessions:
            status = "full"
        else:
            status = "ok"
        body: dict[str, Any] = {
            "status": status,
            "live_sessions": totals.live,
            "max_sessions": self._max_sessions,
            "workers": serving,
        }
        return (200 if status == "ok" else 503), body

    async def _healthz(self, request: Request) -> Response:
        status, body = self.health()
        return json_response(status, body)

    async def _livez(self, request: Request) -> Response:
        # The supervisor runs and restarts its workers: it is what a liveness probe checks.
        return json_response(200, {"status": "alive", "workers": self._serving()})

    async def _metrics(self, request: Request) -> Response:
        return no_store(Response(generate_latest(self._registry), media_type=CONTENT_TYPE))

    def routes(self) -> Sequence[BaseRoute]:
        return [
            Route("/healthz", self._healthz, methods=["GET"]),
            Route("/livez", self._livez, methods=["GET"]),
            Route("/metrics", self._metrics, methods=["GET"]),
        ]
