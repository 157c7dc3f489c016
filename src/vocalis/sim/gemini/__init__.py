"""The sim-server's Gemini Live dialect (BidiGenerateContent over WebSocket).

A sans-I/O session core (:class:`~vocalis.sim.gemini.session.GeminiSimSession`) that speaks
the Gemini Live wire with real espeak speech, server VAD, tool calls and cancellations,
``goAway`` and session resumption, and keeps a faithful, test-inspectable model of the
server-side history (what was *sent*, not what was heard), under a thin Starlette shell
(:mod:`~vocalis.sim.gemini.shell`). It shares no code with the client in
``vocalis.providers.gemini``; it reuses the sim's scenario script, brain and voice.

``DIALECT`` plugs it into :class:`~vocalis.sim.server.SimServer` (``vocalis sim-server
--protocol gemini``); :func:`sessions_of` finds a server's Gemini sessions.
"""

from __future__ import annotations

from vocalis.sim.dialect import Dialect
from vocalis.sim.gemini.history import GeminiHistory, HistoryPart, HistoryTurn
from vocalis.sim.gemini.session import GeminiSimSession, SessionLimits
from vocalis.sim.gemini.shell import GeminiConnection, GeminiSims, routes, sessions_of

API_VERSION = "v1beta"


def endpoint_url(base_url: str, api_version: str = API_VERSION) -> str:
    """The BidiGenerateContent WebSocket URL under ``base_url`` (``http(s)://host:port``)."""
    ws_base = "ws" + base_url.removeprefix("http")
    service = f"google.ai.generativelanguage.{api_version}.GenerativeService"
    return f"{ws_base}/ws/{service}.BidiGenerateContent"


def banner(base_url: str) -> list[str]:
    """What ``vocalis sim-server --protocol gemini`` prints: the endpoint, then how to use it."""
    return [
        endpoint_url(base_url),
        "Gemini Live (BidiGenerateContent; also ...Constrained) — point a client at it:",
        f"  vocalis: GeminiRealtimeModel(base_url={base_url!r}, api_key='any')",
        f"  google-genai: genai.Client(api_key='any', http_options=types.HttpOptions("
        f"base_url={base_url!r}, api_version='v1beta'))",
        "  (the SDK always connects with wss://: start the server with --tls)",
    ]


DIALECT = Dialect("gemini", routes, banner)

__all__ = [
    "DIALECT",
    "GeminiConnection",
    "GeminiHistory",
    "GeminiSimSession",
    "GeminiSims",
    "HistoryPart",
    "HistoryTurn",
    "SessionLimits",
    "banner",
    "endpoint_url",
    "sessions_of",
]
