"""The espeak-ng C library through ``ctypes``: loading, voices, one synchronous synthesis.

Why a module of its own: this is the part that knows the C ABI (struct layouts, constants from
``speak_lib.h``, the ELF symbol lookup that makes clips reproducible); ``espeak.py`` turns its
raw output (PCM at the native rate plus WORD events) into clips with word timings, and never
touches ``ctypes``.

espeak-ng is process-global, so there is exactly one :data:`ENGINE`; hold ``ENGINE.lock``
around every call.
"""

from __future__ import annotations

import ctypes
import struct
import sys
import threading

import espeakng_loader
import numpy as np

from vocalis.audio.frame import Int16Array

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


class EspeakError(RuntimeError):
    """espeak-ng could not be loaded, initialised, or refused a voice/parameter."""


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


ENGINE = _Engine()
"""The process-wide engine (espeak-ng keeps global state: one instance, one lock)."""
