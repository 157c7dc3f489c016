"""AgentSession options, with the reasons behind each default."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from vocalis.providers.base import TurnDetection
from vocalis.runtime.playout import TTSFallback


@dataclass(frozen=True, slots=True)
class InterruptionOptions:
    """When caller speech cuts the agent off.

    `min_duration_s` applies where vocalis decides (local VAD, or server VAD configured with
    `interrupt_response=False`): caller speech over the agent whose *voice* lasts less than
    this is a backchannel ("mhm", a cough). It never stops the answer and never becomes a turn:
    nothing is committed or answered (local VAD clears the input buffer; with server VAD the
    committed item is deleted and a reply the server starts for it is cancelled unheard). The
    end of speech is only known a silence window after the voice stopped, so longer speech is
    confirmed as an interruption `min_duration_s` + that window after its onset.

    `resume_false_interruption`: instead of talking through the undecided speech, pause
    playback at the onset (so a real interruption sounds instant and is truncated exactly where
    playback stopped) and resume from the same sample after a backchannel — no truncate, one
    complete message in the history. Needs a sink that can pause (`AudioSink.can_pause`: the
    clocked sinks and the playground page; not Twilio); elsewhere the agent keeps talking.

    With server VAD and `interrupt_response=True` none of this applies: the provider cancels
    the generation on the onset by itself and commits the caller's audio as a turn, so vocalis
    follows at once (use `interrupt_response=False` for backchannel tolerance).
    """

    enabled: bool = True
    min_duration_s: float = 0.0
    resume_false_interruption: bool = False


@dataclass(frozen=True, slots=True)
class LocalVADOptions:
    """Energy VAD used when the provider has no server turn detection."""

    threshold_db: float = -40.0
    min_speech_ms: float = 100.0
    min_silence_ms: float = 500.0


@dataclass(frozen=True, slots=True)
class AgentSessionOptions:
    """Runtime behaviour of an `AgentSession`.

    turn_detection: the provider's turn detection (server VAD by default). `None` or
        `"local"` turns it off on the provider; vocalis then runs a local energy VAD to detect
        caller speech, interrupt, commit the turn and request the reply.
    event_log_limit: how many recent events `event_log` keeps (subscribers see all of them).
    event_log_bytes: the bytes those events may keep alive (estimated), so that a long call
        does not hold its whole event stream.
    stall_timeout_s: a response that produces nothing (no message, audio, text or call) for
        this long is cancelled and the session returns to listening (P15-P18: the agent
        stuck "speaking" until the caller says "hello?").
    cancel_timeout_s: how long to wait for the provider to acknowledge a cancel before the
        runtime stops waiting and releases the turn anyway.
    operation_timeout_s: bound on each truncate/delete/tool-output call.
    reply_after_interrupted_tools: after a barge-in, tool outputs are always sent (exactly
        once); a follow-up reply is only requested when this is True — by default the
        caller's new turn is answered instead.
    tts_fallback: voices text-only messages when the transport plays audio.
    transcript_interval_s: how often words are released to the text sink while audio plays.
    """

    turn_detection: TurnDetection | Literal["local"] | None = field(default_factory=TurnDetection)
    interruption: InterruptionOptions = field(default_factory=InterruptionOptions)
    local_vad: LocalVADOptions = field(default_factory=LocalVADOptions)
    stall_timeout_s: float = 8.0
    cancel_timeout_s: float = 2.0
    operation_timeout_s: float = 5.0
    reply_after_interrupted_tools: bool = False
    tts_fallback: TTSFallback | None = None
    transcript_interval_s: float = 0.1
    input_transcription_model: str | None = None
    say_instructions: str = "Say exactly: {text}"
    # Added to the reply that answers again after a response was lost with its connection
    # when the caller heard part of it (the model sees that part as its last message).
    lost_reply_instructions: str = (
        "The connection dropped while you were speaking; the caller heard your last message "
        "only as far as it goes. Continue from there without repeating it."
    )
    # How many recent events `AgentSession.event_log` keeps (None: all; a long call then grows).
    event_log_limit: int | None = 4096
    # ... and how many bytes they may keep alive (estimated; None: no byte bound). 16 KiB is
    # the last ~150 events, a minute or two of conversation; the turn metrics of the saved
    # history are kept apart and never depend on it.
    event_log_bytes: int | None = 16_384

    @property
    def server_turn_detection(self) -> TurnDetection | None:
        td = self.turn_detection
        return td if isinstance(td, TurnDetection) else None
