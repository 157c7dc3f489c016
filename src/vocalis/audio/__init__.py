"""Audio primitives for vocalis: int16 frames, resampling, G.711, base64 transport, VAD and
real synthesized speech (espeak-ng) for demos and tests.

Everything here is transport- and provider-agnostic and safe to call on the per-frame hot path.
"""

from vocalis.audio.chunker import FrameChunker
from vocalis.audio.codec import b64decode_bytes, b64decode_pcm16, b64encode_bytes, b64encode_pcm16
from vocalis.audio.espeak import (
    ESPEAK_NATIVE_RATE,
    EspeakError,
    SpeechClip,
    WordTiming,
    synthesize,
    synthesize_async,
)
from vocalis.audio.frame import (
    AudioFrame,
    Int16Array,
    ms_to_samples,
    pcm16_bytes_to_ms,
    samples_to_ms,
)
from vocalis.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from vocalis.audio.resample import Quality, StreamResampler, resample
from vocalis.audio.vad import EnergyVAD, VADEvent, VADEventKind, db_to_threshold, threshold_to_db
from vocalis.audio.wav import read_wav, wav_bytes, write_wav

__all__ = [
    "ESPEAK_NATIVE_RATE",
    "AudioFrame",
    "EnergyVAD",
    "EspeakError",
    "FrameChunker",
    "Int16Array",
    "Quality",
    "SpeechClip",
    "StreamResampler",
    "VADEvent",
    "VADEventKind",
    "WordTiming",
    "alaw_decode",
    "alaw_encode",
    "b64decode_bytes",
    "b64decode_pcm16",
    "b64encode_bytes",
    "b64encode_pcm16",
    "db_to_threshold",
    "ms_to_samples",
    "pcm16_bytes_to_ms",
    "read_wav",
    "resample",
    "samples_to_ms",
    "synthesize",
    "synthesize_async",
    "threshold_to_db",
    "ulaw_decode",
    "ulaw_encode",
    "wav_bytes",
    "write_wav",
]
