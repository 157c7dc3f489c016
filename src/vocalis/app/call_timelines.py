"""The timeline page of each recent call, served next to the playground page.

Why: the playground shows a call as it happens; the timeline (generated vs heard per
message, cuts, tools, latencies) explains it afterwards — without `--out`, a terminal or a
file browser. `vocalis serve` keeps the last `limit` calls' sources (the live session while
the call runs, its final record once it ended) and renders `/timeline/<n>?token=…` on demand;
the page links to it. Guarded by the playground's token like the page itself.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from vocalis.app.reports.timeline import render_html
from vocalis.app.reports.timeline_build import build_timeline
from vocalis.transports.playground.server import playground_access

# (history JSON, event records) of a call, as of now.
CallSource = Callable[[], tuple[dict[str, Any], list[dict[str, Any]]]]

_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    # The page is self-contained: inline styles and SVG, no scripts, nothing fetched.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
}


class CallTimelines:
    """A bounded map call number → where its timeline comes from."""

    def __init__(self, limit: int = 20) -> None:
        self.limit = limit
        self._calls: OrderedDict[str, tuple[str, CallSource]] = OrderedDict()
        # Whether a server mounted `route()` (else the page gets no link to follow).
        self.served = False

    def add(self, number: int, title: str, source: CallSource) -> str:
        """Register (or update) call `number`; returns its path on the server."""
        key = str(number)
        self._calls[key] = (title, source)
        self._calls.move_to_end(key)
        while len(self._calls) > self.limit:
            self._calls.popitem(last=False)
        return f"/timeline/{key}"

    def page(self, key: str) -> str | None:
        entry = self._calls.get(key)
        if entry is None:
            return None
        title, source = entry
        history, events = source()
        return render_html(build_timeline(history, events, title=title))

    def route(self, secret: str) -> BaseRoute:
        self.served = True
        authorize = playground_access(secret, same_origin=False)

        async def timeline(request: Request) -> Response:
            refused = authorize(request)
            if refused is not None:
                return refused
            html = self.page(str(request.path_params["key"]))
            if html is None:
                return PlainTextResponse("no such call (only recent calls are kept)\n", 404)
            return HTMLResponse(html, headers=_HEADERS)

        return Route("/timeline/{key}", timeline, methods=["GET"])
