"""A worker process joins its pool from the spec its supervisor put in its environment, on
the ports the single-process rules pick."""

from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path

import pytest

from vocalis.app.serve_fleet import join_fleet, serves_page, twilio_port
from vocalis.transports.web.listeners import bind_listener, listening_socket
from vocalis.worker.fleet import FleetTable
from vocalis.worker.spec import SPEC_ENV, Listener, WorkerSpec


def test_the_spec_and_its_secret_leave_the_environment_once_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = FleetTable.create(tmp_path / "admission", 2)
    listener_sock = bind_listener("127.0.0.1", 0)
    port = int(listener_sock.getsockname()[1])
    ours, theirs = socket.socketpair()
    spec = WorkerSpec(
        index=1,
        workers=2,
        table=table.path,
        metrics_dir=tmp_path,
        channel_fd=theirs.fileno(),
        listeners=(Listener("call", "127.0.0.1", port, listener_sock.fileno()),),
        announce=False,
        secret="fleet-secret-of-this-start",
    )
    monkeypatch.setenv(SPEC_ENV, spec.to_env())
    args = argparse.Namespace(port=8000, twilio_port=None, admin_port=None)
    member = join_fleet(args)
    # The worker's objects now own both fds (in a real worker they are inherited).
    listener_sock.detach()
    theirs.detach()
    try:
        assert member is not None and member.index == 1 and args.port == port
        assert member.spec.secret == "fleet-secret-of-this-start"
        # What a tool's subprocess would inherit: no spec, no secret.
        assert SPEC_ENV not in os.environ
        assert all("fleet-secret-of-this-start" not in value for value in os.environ.values())
        assert join_fleet(argparse.Namespace(port=1, twilio_port=None, admin_port=None)) is None
    finally:
        listening_socket("127.0.0.1", port).close()  # the adopted socket (same fd)
        if member is not None:
            member.channel.close()
            member.table.close()
        ours.close()
        table.close()


@pytest.mark.parametrize(
    ("flags", "page", "twilio"),
    [
        ({"twilio": True}, False, 8000),  # Twilio alone: on --port
        ({"twilio": True, "playground": True}, True, 8001),  # after the page's port
        ({"twilio": True, "webrtc": True, "port": 0}, True, 0),  # 0 stays "any free port"
        ({"twilio": True, "playground": True, "twilio_port": 9000}, True, 9000),
        ({}, True, 8001),  # no --twilio: the playground only
    ],
)
def test_the_page_and_twilio_ports_follow_the_flags(
    flags: dict[str, object], page: bool, twilio: int
) -> None:
    defaults: dict[str, object] = {
        "port": 8000,
        "twilio_port": None,
        "twilio": False,
        "playground": False,
        "webrtc": False,
    }
    args = argparse.Namespace(**{**defaults, **flags})
    assert serves_page(args) is page
    assert twilio_port(args) == twilio
