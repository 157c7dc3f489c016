"""Real speech synthesis with espeak-ng (from the ``espeakng-loader`` wheel), with word timings.

Why it exists: demos, the simulated realtime server and the tests need *real* speech — VAD
onsets, barge-in timing and the "text the caller heard" all depend on realistic audio and on
knowing when each word was spoken. espeak-ng is small, deterministic, needs no network or
model download, and is shipped as a wheel (shared library + data), so no system package is
required.

How: the C library is driven through ``ctypes`` in synchronous mode. A synth callback
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
import ctypes
import functools
import re
import struct
import sys
import threading
from dataclasses import dataclass

import espeakng_loader
import numpy as np

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

ESPEAK_NATIVE_RATE = 22050
"""Sample rate espeak-ng renders at (returned by ``espeak_Initialize``)."""

# espeak-ng speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE = 1
_PARAM_PITCH = 3
_EE_OK = 0
_RAND_SEED = 1
_RESET_VOICE = b"fi"  # any voice other than the requested one forces a full voice reload
_FLUTTER_PERIOD = 0x170 * 64  # N_FLUTTER * 64 in wavegen.c

_CACHE_SIZE = 128
_TRIM_WINDOW_MS = 5
_WORD_RE = re.compile(r"\S+")


class EspeakError(RuntimeError):
    """espeak-ng could not be loaded, initialised, or refused a voice/parameter."""


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


class _Event(ctypes.Structure):
    _fields_ = (
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    )


class _Voice(ctypes.Structure):
    _fields_ = (
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    )


_SynthCallback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


class _DlInfo(ctypes.Structure):
    _fields_ = (
        ("dli_fname", ctypes.c_char_p),
        ("dli_fbase", ctypes.c_void_p),
        ("dli_sname", ctypes.c_char_p),
        ("dli_saddr", ctypes.c_void_p),
    )


def _elf_local_symbol(path: str, prefix: bytes) -> tuple[int, int] | None:
    """(value, size) of the first ``.symtab`` symbol whose name starts with ``prefix``.

    A minimal ELF64 little-endian reader: enough to find a function-local static in an
    unstripped shared library. Returns ``None`` for anything else (stripped, not ELF64, ...).
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError:
        return None
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [
        struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)
    ]
    for sec in sections:
        if sec[1] != 2:  # SHT_SYMTAB
            continue
        strtab = sections[sec[6]]
        str_off = strtab[4]
        sym_off, sym_size, entsize = sec[4], sec[5], sec[9]
        for name_off, _info, _other, _shndx, value, size in struct.iter_unpack(
            "<IBBHQQ", data[sym_off : sym_off + sym_size - sym_size % entsize]
        ):
            start = str_off + name_off
            if data.startswith(prefix, start):
                return value, size
    return None


def _flutter_index(lib: ctypes.CDLL, path: str) -> ctypes.c_int | None:
    """The wavegen pitch-flutter phase (a function-local static in espeak-ng's wavegen.c).

    espeak-ng never resets it, so without this every clip depends on how much audio was
    synthesized before it in the process. Found via the ELF symbol table and dladdr; ``None``
    where that is not possible (non-Linux, stripped library), in which case clips may differ
    by a few milliseconds between processes.
    """
    if not sys.platform.startswith("linux"):
        return None
    sym = _elf_local_symbol(path, b"Flutter_ix")
    if sym is None or sym[1] != ctypes.sizeof(ctypes.c_int):
        return None
    try:
        libc = ctypes.CDLL(None)
        info = _DlInfo()
        addr = ctypes.cast(lib.espeak_Synth, ctypes.c_void_p).value
        if not libc.dladdr(ctypes.c_void_p(addr), ctypes.byref(info)) or not info.dli_fbase:
            return None
    except (OSError, AttributeError):
        return None
    var = ctypes.c_int.from_address(info.dli_fbase + sym[0])
    return var if 0 <= var.value < _FLUTTER_PERIOD else None


class _Engine:
    """The process-wide espeak-ng instance. Every method must be called with ``lock`` held."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._lib: ctypes.CDLL | None = None
        self._callback = _SynthCallback(self._on_synth)  # kept alive for the C side
        self._chunks: list[bytes] = []
        self._word_events: list[tuple[int, int]] = []  # (text_position 1-based, audio ms)
        self._languages: dict[str, str] | None = None
        self._flutter: ctypes.c_int | None = None
        self.native_rate = ESPEAK_NATIVE_RATE

    def _on_synth(
        self, wav: ctypes._Pointer[ctypes.c_short], numsamples: int, events: ctypes._Pointer[_Event]
    ) -> int:
        if numsamples > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, numsamples * 2))
        if events:
            i = 0
            while True:
                ev = events[i]
                if ev.type == _EVENT_LIST_TERMINATED:
                    break
                if ev.type == _EVENT_WORD:
                    self._word_events.append((ev.text_position, ev.audio_position))
                i += 1
        return 0  # continue synthesis

    @property
    def flutter_reset_available(self) -> bool:
        return self._flutter is not None

    def load(self) -> ctypes.CDLL:
        if self._lib is not None:
            return self._lib
        try:
            lib_path = espeakng_loader.get_library_path()
            lib = ctypes.CDLL(lib_path)
            data_path = espeakng_loader.get_data_path()
        except (OSError, RuntimeError) as exc:
            raise EspeakError(f"cannot load espeak-ng from espeakng-loader: {exc}") from exc
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_ng_SetRandSeed.restype = None
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(), _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise EspeakError(f"espeak_Initialize failed (returned {rate}) with data {data_path}")
        self.native_rate = rate
        lib.espeak_SetSynthCallback(self._callback)
        self._flutter = _flutter_index(lib, lib_path)
        self._lib = lib
        return lib

    def _language_map(self, lib: ctypes.CDLL) -> dict[str, str]:
        """Language tag (lower case) -> identifier of the voice that prefers it most."""
        if self._languages is not None:
            return self._languages
        best: dict[str, tuple[int, str]] = {}
        voices = lib.espeak_ListVoices(None)
        i = 0
        while voices[i]:
            voice = voices[i].contents
            ptr = voice.languages
            ident = (voice.identifier or b"").decode("utf-8", "replace")
            while ptr:
                priority = ctypes.string_at(ptr, 1)[0]
                if priority == 0:
                    break
                lang = ctypes.string_at(ptr + 1)
                tag = lang.decode("ascii", "replace").lower()
                if tag not in best or priority < best[tag][0]:
                    best[tag] = (priority, ident)
                ptr += len(lang) + 2
            i += 1
        self._languages = {tag: ident for tag, (_, ident) in best.items()}
        return self._languages

    def _set_voice(self, lib: ctypes.CDLL, voice: str) -> None:
        # Re-selecting the current voice keeps state changed by earlier rate settings, so
        # always switch away first: a full reload makes the clip independent of history.
        lib.espeak_SetVoiceByName(_RESET_VOICE)
        if lib.espeak_SetVoiceByName(voice.encode()) == _EE_OK:
            return
        base, plus, variant = voice.partition("+")
        ident = self._language_map(lib).get(base.lower())
        if ident is not None and lib.espeak_SetVoiceByName((ident + plus + variant).encode()) == 0:
            return
        raise EspeakError(f"espeak-ng has no voice {voice!r} (try 'en-us', 'en-gb', 'en-us+f3')")

    def synth(
        self, text: str, voice: str, wpm: int, pitch: int
    ) -> tuple[Int16Array, list[tuple[int, int]]]:
        lib = self.load()
        self._set_voice(lib, voice)
        if lib.espeak_SetParameter(_PARAM_RATE, wpm, 0) != _EE_OK:
            raise EspeakError(f"espeak-ng rejected words_per_minute={wpm}")
        if lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0) != _EE_OK:
            raise EspeakError(f"espeak-ng rejected pitch={pitch}")
        # espeak-ng varies pitch/durations with a PRNG; a fixed seed makes every clip (and so
        # every test and sim run) reproducible regardless of what was synthesized before.
        lib.espeak_ng_SetRandSeed(_RAND_SEED)
        if self._flutter is not None:
            self._flutter.value = 0
        self._chunks = []
        self._word_events = []
        data = text.encode("utf-8")
        try:
            err = lib.espeak_Synth(
                data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
            if err != _EE_OK:
                raise EspeakError(f"espeak_Synth failed with error {err}")
            pcm = np.frombuffer(b"".join(self._chunks), dtype=np.int16)
            return pcm, self._word_events
        finally:
            self._chunks = []
            self._word_events = []


_ENGINE = _Engine()


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

    True on Linux with the wheel's unstripped library (see ``_flutter_index``).
    """
    with _ENGINE.lock:
        _ENGINE.load()
        return _ENGINE.flutter_reset_available


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _synthesize_cached(
    text: str, voice: str, words_per_minute: int, pitch: int, sample_rate: int
) -> SpeechClip:
    with _ENGINE.lock:
        pcm, events = _ENGINE.synth(text, voice, words_per_minute, pitch)
        native = _ENGINE.native_rate
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
