"""`ProviderLimits`: what a provider may make one call hold (#14); `TextBounds`, the one
place a provider core asks before it keeps peer text; `admit_item_audio`, the same for audio.

`ProviderLimits` is re-exported by `vocalis.providers.base`; every provider's core reads it.
`TextBounds` (one per provider session; it survives reconnects, the bounds are per call) admits
each delta against the item's bound and the call's total: past either, the rest is dropped and
the reason is logged (rate-limited), so a provider streaming text forever costs bounded memory
— and no accumulated text is copied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from vocalis.utils.logsafe import WarnLimiter

if TYPE_CHECKING:  # base re-exports this module, so import it only for the types
    from vocalis.providers.base import ItemAccount


@dataclass(frozen=True, slots=True)
class ProviderLimits:
    """Per-call bounds at the provider boundary, whatever the provider sends (#14).

    A peer that streams text forever or sends one enormous audio delta must not grow a call
    without limit. Past a bound the data is dropped and the reason logged once; the call goes
    on with what was kept. Names and defaults are the provider half of the runtime's
    `CallBudget` (docs/reliability.md lists both in one table).
    """

    # Text kept per item: agent text or audio transcript, caller transcript, tool arguments.
    max_item_text_chars: int = 16_000
    # All item text the provider keeps for one call (every item above, together).
    max_call_text_chars: int = 1_000_000
    # Audio accepted for one provider output item.
    max_item_audio_s: float = 300.0
    # One event's audio payload (base64 characters), checked before it is decoded.
    max_delta_bytes: int = 1_048_576
    # Partial caller transcripts are reported (cumulative) up to this length; beyond it only
    # the final transcript is (each partial event carries a copy of the text so far).
    partial_transcript_chars: int = 1_024
    # Items per call: the output and caller items a provider core reports to the runtime
    # (counted for the whole call, however they came: announced, or content for an id never
    # announced), and the entries it holds at once (its mirror of the provider conversation,
    # running responses). Each costs ~0.3 KB in the core however empty, ~1.1 KB with the
    # runtime's history item: a provider sending items without end would grow the call
    # without a text or audio bound ever applying. Past it the call ends with one fatal
    # `item_budget` error (dropping items would make a re-sync re-create them). A 10-minute
    # call has ~340 items; the default is ~5 hours of conversation. (`item_bound.py`)
    max_call_items: int = 10_000

    def __post_init__(self) -> None:
        for name in self.__slots__:
            if not getattr(self, name) > 0:
                raise ValueError(f"ProviderLimits.{name} must be positive")


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


def admit_item_audio(
    limits: ProviderLimits, warn: WarnLimiter, account: ItemAccount, ms: float
) -> bool:
    """Charge `ms` of decoded audio to `account` unless it passes the item's audio bound.

    One rule for every provider core (OpenAI and Gemini both call it per audio delta): past
    `max_item_audio_s` the delta is dropped, the reason logged (rate-limited) and the
    account left as it was, so `received_ms` only ever counts audio that was forwarded.
    """
    if account.received_ms + ms > limits.max_item_audio_s * 1000.0:
        warn.warn(
            "item_audio_bound",
            "audio of item %s exceeded %.0f s; the rest is dropped",
            account.item_id,
            limits.max_item_audio_s,
        )
        return False
    account.received_ms += ms
    return True
