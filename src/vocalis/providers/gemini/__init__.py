"""Gemini Live (BidiGenerateContent) on the provider-neutral interface.

`GeminiRealtimeModel` connects to the Gemini Developer API (key from ``GEMINI_API_KEY`` /
``GOOGLE_API_KEY``), Vertex AI (`VertexAI`), or any compatible endpoint such as
``vocalis sim-server --protocol gemini``. Gemini cannot truncate or delete history; the heard
contract is kept by a `HeardStrategy` (default: re-seed a fresh session with the heard
history), see ``docs/heard-contract.md``.
"""

from __future__ import annotations

from vocalis.providers.gemini.endpoint import VertexAI
from vocalis.providers.gemini.heard import HeardStrategy
from vocalis.providers.gemini.model import CAPABILITIES, DEFAULT_MODEL, GeminiRealtimeModel
from vocalis.providers.gemini.realtime import GeminiRealtimeSession

__all__ = [
    "CAPABILITIES",
    "DEFAULT_MODEL",
    "GeminiRealtimeModel",
    "GeminiRealtimeSession",
    "HeardStrategy",
    "VertexAI",
]
