"""Real speech synthesis with espeak-ng (from the ``espeakng-loader`` wheel), with word timings.

Why it exists: demos, the simulated realtime server and the tests need *real* speech — VAD
onsets, barge-in timing and the "text the caller heard" all depend on realistic audio and on
knowing when each word was spoken. espeak-ng is small, deterministic, needs no network or
model download, and is shipped as a wheel (shared library + data), so no system package is
required.

How: the C library is driven through ``ctypes`` in synchronous mode (the binding is
``espeak_engine.py``; this module only turns its output into clips). A synth callback
collects the audio chunks and the ``espeakEVENT_WORD`` events; each event's
``audio_position`` (ms) is the word's start and its 1-based ``text_position`` (in characters)
maps back to the whitespace-delimited token of the input text. A word ends where its audio
energy ends (trailing pause trimmed), at the latest where the next word starts.

Facts callers should know:

- espeak-ng renders at 22050 Hz; clips are resampled to ``sample_rate`` (default 24 kHz).
- Word starts come from espeak in whole milliseconds; ends are measured on 5 ms windows.
  Tokens are whitespace-delimited, so ``len(clip.words) == len(text.split())`` always.
  espeak sometimes emits no WORD event for a token (a lone dash, or "e-mail" right after
  "U.S.A."): such a token gets a zero-length timing at the next word's start (or the clip
  end) and its audio is counted in the previous word — at most one word off.
- Synthesis is fast: about 1.2 ms of CPU per second of audio (24 kHz, incl. resampling).
- Clips are bit-reproducible across processes and call orders on Linux (see
  :func:`deterministic`).
- espeak-ng is a process-global C library: every call is serialised by a lock. Results are
  cached (bounded LRU) because tests and the sim server speak the same sentences repeatedly;
  cached sample arrays are read-only.
- Voice names: espeak names (``"en-us"``, ``"en"``, ``"gmw/en-GB-x-rp"``) or language tags
  (``"en-gb"`` is resolved through the voice list), optionally with a variant (``"+f3"``,
  ``"+m2"``): e.g. caller ``"en-us+f3"`` vs agent ``"en-gb"``.
"""

from __future__ import annotations

import asyncio
import functools
import re
from dataclasses import dataclass

import numpy as np

from vocalis.audio.espeak_engine import ENGINE, ESPEAK_NATIVE_RATE, EspeakError
from vocalis.audio.frame import AudioFrame, Int16Array
from vocalis.audio.resample import resample

__all__ = [
    "ESPEAK_NATIVE_RATE",
    "EspeakError",
    "SpeechClip",
    "WordTiming",
    "clear_cache",
    "deterministic",
    "synthesize",
    "synthesize_async",
]

_CACHE_SIZE = 128
_TRIM_WINDOW_MS = 5
_WORD_RE = re.compile(r"\S+")


@dataclass(frozen=True, slots=True)
class WordTiming:
    """One word of the input text and when it is audible in the clip.

    ``word`` is the whitespace-delimited token exactly as written (punctuation included), and
    ``text[char_start:char_end] == word``, so ``text[:w.char_end]`` is the prefix spoken up to
    and including that word.
    """

    word: str
    start_ms: float
    end_ms: float
    char_start: int = 0
    char_end: int = 0


@dataclass(frozen=True, eq=False)
class SpeechClip:
    """Synthesized speech: int16 mono samples plus per-word timings (monotonic, in order)."""

    text: str
    samples: Int16Array
    sample_rate: int
    words: tuple[WordTiming, ...]

    @property
    def duration_ms(self) -> float:
        return float(self.samples.shape[0] * 1000.0 / self.sample_rate)

    def to_frame(self) -> AudioFrame:
        """The clip as an :class:`AudioFrame` (no copy)."""
        return AudioFrame(self.samples, self.sample_rate)

    def words_heard(self, played_ms: float) -> tuple[WordTiming, ...]:
        """Words completely played within the first ``played_ms`` of the clip."""
        return tuple(w for w in self.words if w.end_ms <= played_ms)

    def text_heard(self, played_ms: float) -> str:
        """The text prefix (ending at a word boundary) heard after ``played_ms`` of playback."""
        heard = self.words_heard(played_ms)
        return self.text[: heard[-1].char_end] if heard else ""


def _active_window_ends(pcm: Int16Array, rate: int) -> tuple[Int16Array, int]:
    """Per 5 ms window: 1 where the window is audible. Also returns the window length."""
    win = max(1, rate * _TRIM_WINDOW_MS // 1000)
    n = pcm.shape[0] // win
    if n == 0:
        return np.zeros(0, dtype=np.int16), win
    frames = pcm[: n * win].reshape(n, win).astype(np.float32)
    rms = np.sqrt(np.mean(frames * frames, axis=1))
    # -40 dB below the loudest window, but never below an absolute floor (~-60 dBFS)
    threshold = max(float(rms.max()) * 0.01, 32.0)
    return (rms > threshold).astype(np.int16), win


def _word_timings(
    text: str, events: list[tuple[int, int]], pcm: Int16Array, rate: int
) -> tuple[WordTiming, ...]:
    tokens = [(m.start(), m.end()) for m in _WORD_RE.finditer(text)]
    if not tokens:
        return ()
    starts_char = np.array([s for s, _ in tokens])
    # first WORD event inside each token gives its start (numbers like "1,500" emit several)
    token_start_ms: list[float | None] = [None] * len(tokens)
    for text_pos, audio_ms in events:
        idx = int(np.searchsorted(starts_char, text_pos - 1, side="right")) - 1
        if idx >= 0 and text_pos - 1 < tokens[idx][1] and token_start_ms[idx] is None:
            token_start_ms[idx] = float(audio_ms)
    clip_ms = pcm.shape[0] * 1000.0 / rate
    # tokens espeak did not voice (e.g. a lone dash) sit, zero-length, at the next word's start
    resolved: list[float] = [clip_ms] * len(tokens)
    nxt = clip_ms
    for i in range(len(tokens) - 1, -1, -1):
        value = token_start_ms[i]
        nxt = min(nxt, value) if value is not None else nxt
        resolved[i] = nxt
    for i in range(1, len(resolved)):  # keep starts monotonic even if espeak reorders
        resolved[i] = max(resolved[i], resolved[i - 1])

    active, win = _active_window_ends(pcm, rate)
    win_ms = win * 1000.0 / rate
    words: list[WordTiming] = []
    for i, (c0, c1) in enumerate(tokens):
        start = resolved[i]
        limit = resolved[i + 1] if i + 1 < len(tokens) else clip_ms
        w0 = int(start / win_ms)
        w1 = min(int(np.ceil(limit / win_ms)), active.shape[0])
        on = np.flatnonzero(active[w0:w1])
        end = min(limit, (w0 + int(on[-1]) + 1) * win_ms) if on.size else start
        words.append(WordTiming(text[c0:c1], start, max(end, start), c0, c1))
    return tuple(words)


def _validate(text: str, words_per_minute: int, pitch: int, sample_rate: int) -> None:
    if not isinstance(text, str):
        raise TypeError(f"text must be str, got {type(text).__name__}")
    if not 80 <= words_per_minute <= 450:
        raise ValueError(f"words_per_minute must be within 80..450, got {words_per_minute}")
    if not 0 <= pitch <= 100:
        raise ValueError(f"pitch must be within 0..100, got {pitch}")
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")


def clear_cache() -> None:
    """Forget cached clips (tests use it to check that synthesis is reproducible)."""
    _synthesize_cached.cache_clear()


def deterministic() -> bool:
    """Whether clips are bit-identical regardless of what was synthesized before.

    True on Linux with the wheel's unstripped library (see
    ``vocalis.audio.espeak_engine._flutter_index``).
    """
    with ENGINE.lock:
        ENGINE.load()
        return ENGINE.flutter_reset_available


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _synthesize_cached(
    text: str, voice: str, words_per_minute: int, pitch: int, sample_rate: int
) -> SpeechClip:
    with ENGINE.lock:
        pcm, events = ENGINE.synth(text, voice, words_per_minute, pitch)
        native = ENGINE.native_rate
    words = _word_timings(text, events, pcm, native)
    samples = resample(pcm, native, sample_rate) if pcm.size else pcm
    samples.setflags(write=False)
    # resampling rounds the length to whole output samples: keep every word inside the clip
    final_ms = samples.shape[0] * 1000.0 / sample_rate
    words = tuple(
        w
        if w.end_ms <= final_ms
        else WordTiming(w.word, min(w.start_ms, final_ms), final_ms, w.char_start, w.char_end)
        for w in words
    )
    return SpeechClip(text=text, samples=samples, sample_rate=sample_rate, words=words)


def synthesize(
    text: str,
    *,
    voice: str = "en-us",
    words_per_minute: int = 175,
    pitch: int = 50,
    sample_rate: int = 24000,
) -> SpeechClip:
    """Speak ``text`` with espeak-ng and return the audio with word timings.

    Thread-safe; identical calls return the same cached :class:`SpeechClip` (read-only
    samples). Raises :class:`EspeakError` for an unknown voice.
    """
    _validate(text, words_per_minute, pitch, sample_rate)
    return _synthesize_cached(text, voice, words_per_minute, pitch, sample_rate)


async def synthesize_async(
    text: str,
    *,
    voice: str = "en-us",
    words_per_minute: int = 175,
    pitch: int = 50,
    sample_rate: int = 24000,
) -> SpeechClip:
    """:func:`synthesize` in a worker thread so the event loop keeps running."""
    return await asyncio.to_thread(
        synthesize,
        text,
        voice=voice,
        words_per_minute=words_per_minute,
        pitch=pitch,
        sample_rate=sample_rate,
    )
