"""The simulator must not log a client's credentials, even with DEBUG logging on."""

from __future__ import annotations

import logging

import pytest

from vocalis.sim.server import SimServer

from .conftest import open_client

SECRET = "sk-proj-NEVER-LOG-ME-4f1b2c"


async def test_handshake_headers_are_redacted_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with SimServer(port=0) as server:
        for headers in ({"Authorization": f"Bearer {SECRET}"}, {"api-key": SECRET}):
            async with open_client(server, headers=headers) as client:
                await client.send("response.create")
                await client.until("response.done")
    # The plain test client (websockets.client) logs its own headers; only the server's side
    # of the log is under test here.
    server_records = [r for r in caplog.records if not r.name.startswith("websockets.client")]
    assert server_records, "DEBUG logging produced nothing: the test would prove nothing"
    assert any("<redacted>" in r.getMessage() for r in server_records)
    assert not [r for r in server_records if SECRET in r.getMessage()]
