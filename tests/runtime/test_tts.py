"""`EspeakTTS`, the ready text-only fallback: real espeak-ng speech at the asked rate."""

from __future__ import annotations

import numpy as np

from vocalis import AgentSessionOptions, EspeakTTS
from vocalis.runtime.playout import TTSFallback


async def test_espeak_fallback_speaks_the_text_at_its_rate() -> None:
    tts = EspeakTTS(sample_rate=16000)
    fallback: TTSFallback = tts  # satisfies the protocol the session takes
    samples = await fallback.synthesize("Your table is booked for eight.")
    assert samples.dtype == np.int16 and samples.ndim == 1
    seconds = samples.shape[0] / 16000
    assert 1.0 < seconds < 4.0  # about a second and a half of speech at 175 wpm
    assert int(np.abs(samples.astype(np.int32)).max()) > 3000  # audible, not silence
    slower = await EspeakTTS(sample_rate=16000, words_per_minute=100).synthesize(
        "Your table is booked for eight."
    )
    assert slower.shape[0] > samples.shape[0]
    assert AgentSessionOptions(tts_fallback=tts).tts_fallback is tts
