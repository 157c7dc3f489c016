"""One WebSocket to the provider: its send queue, its tasks, and how it ended.

Discarded as a whole when it dies: events queued for a dead socket are never sent on the
next one (a stale `response.create` or `truncate` replayed into a fresh session would
corrupt it).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection

from vocalis.providers.base import ProviderError


class _Fatal(Exception):
    def __init__(self, error: ProviderError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(eq=False)
class _Connection:
    """One socket, its send queue and its tasks; discarded as a whole when it dies."""

    ws: ClientConnection
    queue: asyncio.Queue[str] = field(default_factory=asyncio.Queue)
    ended: asyncio.Future[str] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    session_created: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    expired: bool = False
    fatal: ProviderError | None = None
    lost: bool = False
    # Set once configured and replayed; only a ready socket's mirror is worth replaying.
    ready: bool = False

    @property
    def alive(self) -> bool:
        return not self.ended.done()

    def end(self, reason: str) -> None:
        if not self.ended.done():
            self.ended.set_result(reason)

    def send_event(self, event: dict[str, Any]) -> None:
        if self.alive:
            self.queue.put_nowait(json.dumps(event, separators=(",", ":")))
