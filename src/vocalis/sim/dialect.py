"""The dispatch point for wire protocols ("dialects") served by one sim-server.

Why: ``vocalis sim-server`` speaks OpenAI Realtime and (from ``vocalis.sim.gemini``) Gemini
Live. Both share the HTTP/TLS serving (:mod:`vocalis.sim.serving`), the scenario, the pace and
the auth policy; each owns its URL paths. A :class:`Dialect` contributes Starlette routes,
mounted by :class:`~vocalis.sim.server.SimServer` before its 404 fallback, and the lines the
command prints so a user knows where to point a client.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from vocalis.sim.server import SimServer


@dataclass(frozen=True, slots=True)
class Dialect:
    """One wire protocol: its routes (given the server) and its banner (given the base URL).

    ``banner(base_url)`` gets ``http://host:port`` or ``https://host:port`` (with ``--tls``)
    and returns the lines ``vocalis sim-server`` prints; the first line is the one a script
    reads (the endpoint URL).
    """

    name: str
    routes: Callable[[SimServer], Sequence[BaseRoute]]
    banner: Callable[[str], list[str]]
