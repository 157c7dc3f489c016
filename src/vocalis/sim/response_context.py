"""The effective configuration of one response, and its token usage formula.

Kept apart from :mod:`vocalis.sim.responses` (the event stream) because the protocol core
builds the context (session defaults + ``response.create`` overrides) and the usage numbers are
a wire shape of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ResponseContext:
    """The effective configuration of one response (session defaults + overrides)."""

    response_id: str
    conversation_id: str | None
    output_modalities: list[str]
    output_format: dict[str, Any]
    voice: str | dict[str, Any]
    speed: float = 1.0
    max_output_tokens: int | str = "inf"
    metadata: dict[str, Any] | None = None
    lookahead_ms: float = 200.0
    seed: int = 0
    input_text_tokens: int = 0
    input_audio_tokens: int = 0

    @property
    def audio(self) -> bool:
        return self.output_modalities == ["audio"]


def usage_object(in_text: int, in_audio: int, out_text: int, out_audio: int) -> dict[str, Any]:
    """``response.done``'s usage: text ≈ 4 characters per token, input audio 10 tokens/s,
    output audio 20 tokens/s (deterministic, so tests can assert it)."""
    return {
        "total_tokens": in_text + in_audio + out_text + out_audio,
        "input_tokens": in_text + in_audio,
        "output_tokens": out_text + out_audio,
        "input_token_details": {
            "text_tokens": in_text,
            "audio_tokens": in_audio,
            "image_tokens": 0,
            "cached_tokens": 0,
            "cached_tokens_details": {"text_tokens": 0, "audio_tokens": 0, "image_tokens": 0},
        },
        "output_token_details": {"text_tokens": out_text, "audio_tokens": out_audio},
    }
