"""The simulated model's voice: espeak-ng speech in the session's output format, pre-chunked.

A spoken message is synthesized once and cached together with everything the response
stream needs per frame: the audio in the output format (PCM16 24 kHz, or G.711 µ-law/A-law at
8 kHz), the variable-size chunks (20–200 ms, from a seed) already base64-encoded, and the
transcript split into per-word deltas with the audio span of each word. With 100+ concurrent
sessions speaking the same scripted lines, each line costs one synthesis and one encoding.
"""

from __future__ import annotations

import itertools
import math
import random
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from vocalis.audio.espeak import synthesize
from vocalis.audio.g711 import alaw_encode, ulaw_encode
from vocalis.sim.conversation import WordSpan
from vocalis.sim.session_config import sample_rate, type_bytes_per_ms
from vocalis.sim.wire_json import SafeText, base64_text

MIN_CHUNK_MS = 20
MAX_CHUNK_MS = 200
_TOKEN_RE = re.compile(r"\S+")


@dataclass(frozen=True, slots=True)
class VoiceParams:
    """espeak-ng parameters of one voice."""

    espeak_voice: str = "en-us"
    words_per_minute: int = 175
    pitch: int = 50


# OpenAI voice name -> a distinguishable espeak rendering (pure cosmetics; documented).
OPENAI_VOICES: dict[str, VoiceParams] = {
    "marin": VoiceParams("en-us+f3", 175, 55),
    "cedar": VoiceParams("en-us+m3", 170, 40),
    "alloy": VoiceParams("en-us", 175, 50),
    "ash": VoiceParams("en-us+m2", 175, 45),
    "ballad": VoiceParams("en-gb", 165, 50),
    "coral": VoiceParams("en-us+f2", 180, 60),
    "echo": VoiceParams("en-us+m1", 175, 45),
    "sage": VoiceParams("en-gb+f2", 170, 55),
    "shimmer": VoiceParams("en-us+f4", 180, 65),
    "verse": VoiceParams("en-gb+m3", 175, 45),
}


def voice_for(openai_voice: str | dict[str, Any], override: str | None = None) -> VoiceParams:
    """The espeak voice of a session voice (custom ``{"id": ...}`` voices use the default)."""
    if override:
        return VoiceParams(override)
    if isinstance(openai_voice, str):
        return OPENAI_VOICES.get(openai_voice, VoiceParams())
    return VoiceParams()


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """One ``response.output_audio.delta`` payload and where it lies in the item (ms);
    ``b64`` is marked :class:`SafeText` so each delta's JSON splices it in unread."""

    start_ms: float
    duration_ms: float
    nbytes: int
    b64: SafeText


@dataclass(frozen=True, eq=False)
class Speech:
    """A message rendered for the wire. ``words`` concatenate exactly to ``text``."""

    text: str
    audio: bytes
    bytes_per_ms: float
    duration_ms: float
    words: tuple[WordSpan, ...]
    chunks: tuple[AudioChunk, ...]


def split_words(text: str, timings: list[tuple[float, float]] | None = None) -> list[WordSpan]:
    """Split ``text`` into whitespace tokens, each carrying the whitespace before it, so that
    the deltas concatenate to ``text`` exactly. Without timings every span is (0, 0)."""
    spans: list[WordSpan] = []
    matches = list(_TOKEN_RE.finditer(text))
    cursor = 0
    for index, match in enumerate(matches):
        end = match.end() if index + 1 < len(matches) else len(text)
        start_ms, end_ms = timings[index] if timings is not None else (0.0, 0.0)
        spans.append(WordSpan(text[cursor:end], start_ms, end_ms))
        cursor = end
    return spans


def chunk_durations(total_ms: int, seed: int) -> list[int]:
    """Deterministic pseudo-random chunk sizes in whole ms (20–200), summing to ``total_ms``."""
    rng = random.Random(seed)
    sizes: list[int] = []
    left = total_ms
    while left > 0:
        size = min(left, rng.randint(MIN_CHUNK_MS, MAX_CHUNK_MS))
        sizes.append(size)
        left -= size
    return sizes


def _encode(samples: np.ndarray[Any, np.dtype[np.int16]], fmt_type: str) -> bytes:
    if fmt_type == "audio/pcmu":
        return ulaw_encode(samples)
    if fmt_type == "audio/pcma":
        return alaw_encode(samples)
    return samples.astype("<i2", copy=False).tobytes()


class SpeechKey(NamedTuple):
    """Everything a rendering depends on (the cache key)."""

    text: str
    voice: VoiceParams
    fmt_type: str
    speed: float
    seed: int
    leading_silence_ms: int = 0


_CACHE_SIZE = 512
_cache: OrderedDict[SpeechKey, Speech] = OrderedDict()
_cache_lock = threading.Lock()


def cached(key: SpeechKey) -> Speech | None:
    """The cached rendering, or ``None`` if :func:`speak` would have to synthesize."""
    with _cache_lock:
        speech = _cache.get(key)
        if speech is not None:
            _cache.move_to_end(key)
        return speech


def speak(
    text: str,
    voice: VoiceParams,
    fmt_type: str,
    speed: float,
    seed: int,
    leading_silence_ms: int = 0,
) -> Speech:
    """Synthesize ``text`` and prepare it for streaming (LRU-cached; thread-safe, so it can run
    in a worker thread while the event loop keeps serving other sessions).

    ``leading_silence_ms`` of digital silence come first, in chunks of their own (so the first
    non-silent delta starts exactly after them); word timings count from the item's start.
    """
    key = SpeechKey(text, voice, fmt_type, speed, seed, leading_silence_ms)
    speech = cached(key)
    if speech is None:
        speech = _render(key)
        with _cache_lock:
            _cache[key] = speech
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
    return speech


def _chunks(audio: bytes, bpm: float, start_ms: int, total_ms: int, seed: int) -> list[AudioChunk]:
    """Chunks of ``total_ms`` from ``start_ms`` of ``audio`` (whole ms, so on sample bounds)."""
    chunks: list[AudioChunk] = []
    at_ms = start_ms
    for size in chunk_durations(total_ms, seed):
        position = int(at_ms * bpm)
        nbytes = int(size * bpm)
        piece = audio[position : position + nbytes]
        chunks.append(AudioChunk(float(at_ms), float(size), nbytes, base64_text(piece)))
        at_ms += size
    return chunks


def _render(key: SpeechKey) -> Speech:
    text, voice, fmt_type, speed, seed, leading_silence_ms = key
    rate = sample_rate(fmt_type)
    wpm = max(80, min(450, round(voice.words_per_minute * speed)))
    clip = synthesize(
        text, voice=voice.espeak_voice, words_per_minute=wpm, pitch=voice.pitch, sample_rate=rate
    )
    lead = max(0, int(leading_silence_ms))
    samples = clip.samples
    if lead:
        samples = np.concatenate([np.zeros(rate * lead // 1000, dtype=np.int16), samples])
    audio = _encode(samples, fmt_type)
    bpm = type_bytes_per_ms(fmt_type)
    total_ms = int(len(audio) // bpm)
    audio = audio[: int(total_ms * bpm)]  # whole milliseconds, so chunks align on samples
    chunks = _chunks(audio, bpm, 0, lead, seed ^ 0x5EED) + _chunks(
        audio, bpm, lead, total_ms - lead, seed
    )
    timings = [(lead + w.start_ms, lead + w.end_ms) for w in clip.words]
    if len(timings) != len(_TOKEN_RE.findall(text)):  # defensive: never misalign the transcript
        spread = _spread(len(_TOKEN_RE.findall(text)), float(total_ms - lead))
        timings = [(lead + start, lead + end) for start, end in spread]
    words = tuple(split_words(text, timings))
    return Speech(text, audio, bpm, float(total_ms), words, tuple(chunks))


def chunks_cut_at(speech: Speech, cuts_ms: Sequence[float]) -> Iterator[AudioChunk]:
    """The speech's chunks, each chunk that straddles a cut split in two at the cut.

    A fault placed ``after_audio_ms: m`` must fire when exactly ``m`` ms were sent, not up to a
    200 ms chunk later; cuts are rounded up to whole ms (chunks stay on sample boundaries).
    Only the split chunks are base64-encoded again; the others are the cached ones.
    """
    cuts = sorted({math.ceil(c) for c in cuts_ms if c > 0})
    if not cuts:
        yield from speech.chunks
        return
    bpm = speech.bytes_per_ms
    for chunk in speech.chunks:
        end = chunk.start_ms + chunk.duration_ms
        inside = [c for c in cuts if chunk.start_ms < c < end]
        if not inside:
            yield chunk
            continue
        bounds = [chunk.start_ms, *inside, end]
        for start, stop in itertools.pairwise(bounds):
            first, last = int(start * bpm), int(stop * bpm)
            piece = speech.audio[first:last]
            yield AudioChunk(start, stop - start, last - first, base64_text(piece))


def _spread(count: int, total_ms: float) -> list[tuple[float, float]]:
    step = total_ms / max(count, 1)
    return [(i * step, (i + 1) * step) for i in range(count)]


def text_word_times(text: str, words_per_minute: int = 175) -> list[WordSpan]:
    """Nominal word timings for text-only output (used only for pacing)."""
    step = 60000.0 / words_per_minute
    count = len(_TOKEN_RE.findall(text))
    return split_words(text, [(i * step, (i + 1) * step) for i in range(count)])
