"""Function calls of a response: arguments assembled, the final call emitted exactly once.

The server says a call is complete up to three times (`function_call_arguments.done`,
`output_item.done`, and the item in `response.done`); the runtime must run it once per
`call_id`, whichever comes first. Arguments are text a peer writes: they count against the
item and call text bounds like any other (`providers/limits.py` `TextBounds`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vocalis.providers.base import ToolCall
from vocalis.providers.core_events import ToolCallReady
from vocalis.providers.limits import TextBounds


@dataclass(slots=True)
class PendingCall:
    item_id: str
    call_id: str
    name: str
    parts: list[str] = field(default_factory=list)
    chars: int = 0


class CallTracker:
    """Call ids already emitted in this session."""

    def __init__(self, bounds: TextBounds) -> None:
        self._bounds = bounds
        self._emitted: set[str] = set()

    def take(self, call: PendingCall, delta: str) -> str:
        """Keep an arguments delta (what the bounds admit of it); returns the kept part."""
        delta = self._bounds.admit(call.item_id, call.chars, delta)
        if delta:
            call.parts.append(delta)
            call.chars += len(delta)
        return delta

    def complete(
        self,
        response_id: str,
        calls: dict[str, PendingCall],
        item_id: str,
        call_id: object,
        name: object,
        arguments: object,
    ) -> ToolCallReady | None:
        """The final call for `item_id`, or None if its call id was emitted already."""
        call = calls.get(item_id)
        if call is None:
            call = PendingCall(item_id=item_id, call_id=str(call_id or ""), name=str(name or ""))
            calls[item_id] = call
        final_call_id = str(call_id or call.call_id or item_id)
        if final_call_id in self._emitted:
            return None
        self._emitted.add(final_call_id)
        if isinstance(arguments, str):
            # The server's full text replaces the deltas: charge only what it adds.
            extra = self._bounds.admit(item_id, call.chars, arguments[call.chars :])
            final_args = arguments[: call.chars] + extra
        else:
            final_args = "".join(call.parts)
        return ToolCallReady(
            ToolCall(
                item_id=item_id,
                call_id=final_call_id,
                name=str(name or call.name),
                arguments=final_args,
                response_id=response_id,
            )
        )
