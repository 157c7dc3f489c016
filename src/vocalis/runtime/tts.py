"""A ready `TTSFallback`: espeak-ng, offline, no key, no network.

Why: a realtime model sometimes answers a turn in text only (a tool follow-up under load, a
model configured for text); on a phone or in the browser the caller would then hear nothing.
`AgentSessionOptions(tts_fallback=EspeakTTS())` voices such messages with espeak-ng — robotic
but immediate and always available — and the heard contract still applies (an interrupted
fallback message keeps only its heard words). Any object with a `sample_rate` and an async
`synthesize(text) -> int16 ndarray` plugs in the same way (a cloud TTS, a local neural one).
"""

from __future__ import annotations

import numpy as np

from vocalis.audio.espeak import synthesize_async

__all__ = ["EspeakTTS"]


class EspeakTTS:
    """Voices text with espeak-ng (`voice` is an espeak voice name or a language tag)."""

    def __init__(
        self, voice: str = "en-us", *, sample_rate: int = 24000, words_per_minute: int = 175
    ) -> None:
        self.voice = voice
        self.sample_rate = sample_rate
        self.words_per_minute = words_per_minute

    async def synthesize(self, text: str) -> np.ndarray:
        """int16 mono samples at `sample_rate` (synthesized in a worker thread)."""
        clip = await synthesize_async(
            text,
            voice=self.voice,
            sample_rate=self.sample_rate,
            words_per_minute=self.words_per_minute,
        )
        return np.asarray(clip.samples, dtype=np.int16)
