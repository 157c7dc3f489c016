"""When a scripted fault fires: matching protocol positions, each fault exactly once.

Sans-I/O: the session asks after every event of a response which faults are due; what a
fault *does* (close the socket, stall, send garbage) is the session's business. The
connection-level faults (`LostReplies`) are asked per client request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vocalis.sim.scenario import FaultSpec, ServerSpec


class FaultTracker:
    """The not-yet-fired faults of one response."""

    def __init__(self, faults: tuple[FaultSpec, ...] | list[FaultSpec]) -> None:
        self._pending: list[FaultSpec] = list(faults)
        self._seen: dict[int, int] = {}

    def __bool__(self) -> bool:
        return bool(self._pending)

    def _take(self, due: list[FaultSpec]) -> list[FaultSpec]:
        for fault in due:
            self._pending.remove(fault)
        return due

    def before_created(self) -> list[FaultSpec]:
        return self._take([f for f in self._pending if f.before_response_created])

    def after_event(
        self, event: dict[str, Any], item_audio_ms: Callable[[int], float]
    ) -> list[FaultSpec]:
        """Faults due right after ``event``; ``item_audio_ms(i)`` is the audio streamed so far
        for output item ``i``."""
        if not self._pending:
            return []
        event_type = event.get("type")
        due: list[FaultSpec] = []
        for fault in self._pending:
            if fault.after_event is not None:
                if fault.after_event != event_type:
                    continue
                if fault.output_index is not None and event.get("output_index") != (
                    fault.output_index
                ):
                    continue
                key = id(fault)
                self._seen[key] = self._seen.get(key, 0) + 1
                if self._seen[key] == fault.occurrence:
                    due.append(fault)
            elif fault.after_audio_ms is not None and event_type == "response.output_audio.delta":
                position = fault.after_audio_ms
                if event.get("output_index") == position.item and (
                    item_audio_ms(position.item) >= position.ms
                ):
                    due.append(fault)
        return self._take(due)


class LostReplies:
    """The replies one connection never sends: the ack of the n-th client create of an item
    type (`server.lost_item_acks`), the answer to the n-th retrieve (`server.lost_retrieves`)."""

    def __init__(self, server: ServerSpec, connection: int) -> None:
        self._server = server
        self._connection = connection  # the server's n-th connection, 1-based
        self._creates: dict[str, int] = {}
        self._retrieves = 0

    def ack_lost(self, item_type: str) -> bool:
        count = self._creates[item_type] = self._creates.get(item_type, 0) + 1
        return any(
            spec.item_type == item_type
            and spec.occurrence == count
            and spec.connection in (None, self._connection)
            for spec in self._server.lost_item_acks
        )

    def retrieve_lost(self) -> bool:
        self._retrieves += 1
        return any(
            spec.occurrence == self._retrieves and spec.connection in (None, self._connection)
            for spec in self._server.lost_retrieves
        )
