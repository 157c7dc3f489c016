"""What the supervisor tells each worker process it starts (one environment variable).

Why the environment: a worker is the same `vocalis serve` command line started again, so it
parses the same flags; what differs per worker (its index, the inherited sockets, the shared
table, the playground secret of this start) must not go on the command line, which every
local user can read. The environment is private to the process and its owner, like
`VOCALIS_TOKEN` already is.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

__all__ = ["READY", "SPEC_ENV", "Listener", "ListenerRole", "WorkerSpec"]

SPEC_ENV = "VOCALIS_WORKER_SPEC"
# What a worker sends up its channel once it serves (`WorkerSpec.channel_fd`).
READY = b"ready\n"

# Which port of `vocalis serve` a socket is: --port (playground/WebRTC), Twilio, --admin-port.
ListenerRole = Literal["call", "twilio", "admin"]


@dataclass(frozen=True, slots=True)
class Listener:
    """An inherited listening socket and the address the worker's code will ask for."""

    role: ListenerRole
    host: str
    port: int
    fd: int


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    index: int
    workers: int
    table: Path
    metrics_dir: Path
    # The worker's end of its channel to the supervisor: "ready" goes up; end of file comes
    # down when the supervisor is gone (the worker then drains instead of living on orphaned).
    channel_fd: int
    listeners: tuple[Listener, ...]
    # Print the URLs and the ready line (the first start of worker 0 only: once per fleet).
    announce: bool
    # The playground secret of this start when no `VOCALIS_TOKEN` is set (one for the fleet).
    secret: str

    def to_env(self) -> str:
        return json.dumps(
            {
                "index": self.index,
                "workers": self.workers,
                "table": str(self.table),
                "metrics_dir": str(self.metrics_dir),
                "channel_fd": self.channel_fd,
                "listeners": [[lst.role, lst.host, lst.port, lst.fd] for lst in self.listeners],
                "announce": self.announce,
                "secret": self.secret,
            }
        )

    @classmethod
    def from_env(cls) -> WorkerSpec | None:
        """This process' spec if a supervisor started it, else None (one process serves)."""
        raw = os.environ.get(SPEC_ENV)
        if not raw:
            return None
        data = json.loads(raw)
        return cls(
            index=int(data["index"]),
            workers=int(data["workers"]),
            table=Path(data["table"]),
            metrics_dir=Path(data["metrics_dir"]),
            channel_fd=int(data["channel_fd"]),
            listeners=tuple(
                Listener(cast(ListenerRole, role), str(host), int(port), int(fd))
                for role, host, port, fd in data["listeners"]
            ),
            announce=bool(data["announce"]),
            secret=str(data["secret"]),
        )
