"""`ProviderLimits`: what a provider may make one call hold (#14).

Re-exported by `vocalis.providers.base`; every provider's core reads it.
"""

from __future__ import annotations

from dataclasses import dataclass


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

    def __post_init__(self) -> None:
        for name in self.__slots__:
            if not getattr(self, name) > 0:
                raise ValueError(f"ProviderLimits.{name} must be positive")
