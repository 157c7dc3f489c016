"""What tests read about a connection: the events both ways, the sim's decisions, and waiters.

Every event received and sent is kept as an audio-free summary (base64 audio replaced by its
byte count, :func:`vocalis.sim.log.summarize`), in order, and written to the JSONL event log
when there is one. Long-running servers bound the records (``limit``); the CLI keeps none.
Waiters wake after every record, so a test waits on protocol facts, never on time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from vocalis.sim.log import EventLog, summarize

Event = dict[str, Any]


class Recorder:
    """Records of one connection (``session_id`` names it in the log)."""

    def __init__(self, session_id: str, *, log: EventLog | None, limit: int | None) -> None:
        self.session_id = session_id
        self.client_events: list[Event] = []
        self.server_events: list[Event] = []
        self.notes: list[str] = []
        self._log = log
        # None: keep every event (tests read them by index). N: keep about the newest N of
        # each direction (a long-running server; a 20 ms append is ~0.4 KB of record).
        self._limit = limit
        # No records and no log (the CLI without --log): skip the per-event summary copy.
        self.keeps_summaries = limit != 0 or log is not None
        self._changed = asyncio.Event()
        self._waiters = 0  # wait_until calls in progress

    def changed(self) -> None:
        """Wake the waiters (after any state change worth re-checking); nothing to do (and
        no new Event per audio append) while nobody waits."""
        if self._waiters:
            self._changed.set()
            self._changed = asyncio.Event()

    def _keep(self, events: list[Event], summary: Event) -> None:
        limit = self._limit
        if limit is None:
            events.append(summary)
        elif limit > 0:
            events.append(summary)
            if len(events) >= 2 * limit:
                del events[:-limit]  # trimmed in batches: amortized O(1) per event

    def _write(self, direction: str, payload: Any) -> None:
        if self._log is not None:
            self._log.write(self.session_id, direction, payload)

    def received(self, event: Event) -> None:
        if self.keeps_summaries:
            self.received_summary(summarize(event))
        else:
            self.changed()

    def received_summary(self, summary: Event) -> None:
        """A received frame as already summarized (e.g. ``{"type": None, "malformed_bytes"}``)."""
        self._keep(self.client_events, summary)
        self._write("in", summary)
        self.changed()

    def sent(self, event: Event) -> None:
        if self.keeps_summaries:
            summary = summarize(event)
            self._keep(self.server_events, summary)
            self._write("out", summary)
        self.changed()

    def sent_raw(self, text: str) -> None:
        record = {"type": None, "raw": text}
        self._keep(self.server_events, record)
        self._write("out", record)
        self.changed()

    def note(self, text: str) -> None:
        self.notes.append(text)
        self._write("note", text)

    def state(self, final_state: Event) -> None:
        self._write("state", final_state)
        self.changed()

    async def wait_until(self, predicate: Callable[[], bool], within: float) -> None:
        self._waiters += 1
        try:
            async with asyncio.timeout(within):
                while not predicate():
                    await self._changed.wait()
        finally:
            self._waiters -= 1

    async def wait_event(
        self, events: list[Event], event_type: str, after: int, within: float
    ) -> Event:
        """The first event of ``event_type`` at index >= ``after`` in ``events`` (waits)."""
        found: list[Event] = []

        def match() -> bool:
            for event in events[after:]:
                if event.get("type") == event_type:
                    found.append(event)
                    return True
            return False

        await self.wait_until(match, within)
        return found[0]
