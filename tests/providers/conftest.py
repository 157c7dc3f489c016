"""The provider's socket tests run on both WebSocket backends (`vocalis.providers.wsclient`).

A module opts in with `pytestmark = pytest.mark.usefixtures("websocket_backend")`: every
`OpenAIRealtimeModel` it builds (backend "auto") then resolves to the parametrized library.
A missing picows is a failure with the fix (`uv sync --all-extras`), not a silent skip.
"""

from __future__ import annotations

import pytest

from vocalis.providers.wsclient import BACKEND_ENV, SocketBackend


@pytest.fixture(params=["websockets", "picows"])
def websocket_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    backend: SocketBackend = request.param
    monkeypatch.setenv(BACKEND_ENV, backend)
    return backend
