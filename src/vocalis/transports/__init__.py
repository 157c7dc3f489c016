"""Transports: caller audio in, agent audio out with a real playback clock, text for display.

The contract is in `base` (segments with `full | partial(played_ms) | skipped` results).
In-process transports are exported here; the network and device ones live in their own
modules so importing vocalis does not import `websockets` servers or `sounddevice`:
`vocalis.transports.playground`, `vocalis.transports.twilio`, `vocalis.transports.console`.
"""

from vocalis.transports.base import (
    AudioSink,
    AudioSource,
    OutputSegment,
    PlayoutResult,
    PlayoutStatus,
    TextSink,
    Transport,
)
from vocalis.transports.clocked import ClockedAudioSink, ClockedSegment
from vocalis.transports.file import FileTransport, StereoRecorder, WavInputError, load_input_wav
from vocalis.transports.memory import MemoryAudioSource, MemoryTextSink, MemoryTransport

__all__ = [
    "AudioSink",
    "AudioSource",
    "ClockedAudioSink",
    "ClockedSegment",
    "FileTransport",
    "MemoryAudioSource",
    "MemoryTextSink",
    "MemoryTransport",
    "OutputSegment",
    "PlayoutResult",
    "PlayoutStatus",
    "StereoRecorder",
    "TextSink",
    "Transport",
    "WavInputError",
    "load_input_wav",
]
