"""How much of each piece of text a call may keep (`ProviderLimits`, #14).

One object per provider session (it survives reconnects: the bounds are per call) that every
place accumulating peer text asks before it keeps a delta: the item's own bound and the
call's total. Past either, the rest is dropped and the reason is logged (rate-limited), so a
provider streaming text forever costs bounded memory — and no accumulated text is copied.
"""

from __future__ import annotations

from vocalis.providers.base import ProviderLimits
from vocalis.utils.logsafe import WarnLimiter


class TextBounds:
    def __init__(self, limits: ProviderLimits, warn: WarnLimiter) -> None:
        self.limits = limits
        self._warn = warn
        self.call_chars = 0

    def admit(self, item_id: str, item_chars: int, delta: str) -> str:
        """The part of `delta` an item already holding `item_chars` may keep (charged)."""
        item_room = self.limits.max_item_text_chars - item_chars
        call_room = self.limits.max_call_text_chars - self.call_chars
        room = max(min(item_room, call_room), 0)
        if len(delta) > room:
            if item_room <= call_room:
                self._warn.warn(
                    "item_text_bound",
                    "text of item %s exceeded %d characters; the rest is dropped",
                    item_id,
                    self.limits.max_item_text_chars,
                )
            else:
                self._warn.warn(
                    "call_text_bound",
                    "the call's text exceeded %d characters; new text is dropped",
                    self.limits.max_call_text_chars,
                )
            delta = delta[:room]
        self.call_chars += len(delta)
        return delta
