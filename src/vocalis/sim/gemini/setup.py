"""The ``setup`` message: parsed once per connection into a :class:`SetupConfig`.

Field names are read in either spelling (``realtimeInputConfig`` / ``realtime_input_config``),
because the SDK mixes them. A setup the service would refuse closes the socket with 1007 and a
reason (:class:`~vocalis.sim.gemini.wire.WireError`), which is how the service reports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from vocalis.audio.vad import threshold_to_db
from vocalis.sim.gemini.wire import WireError, field, mapping
from vocalis.sim.voice import VoiceParams

Modality = Literal["AUDIO", "TEXT"]

# Gemini's prebuilt voice names -> a distinguishable espeak rendering (cosmetics only).
GEMINI_VOICES: dict[str, VoiceParams] = {
    "Puck": VoiceParams("en-us+m3", 175, 50),
    "Charon": VoiceParams("en-us+m1", 165, 40),
    "Kore": VoiceParams("en-us+f3", 175, 55),
    "Fenrir": VoiceParams("en-us+m2", 180, 45),
    "Aoede": VoiceParams("en-us+f2", 175, 60),
    "Leda": VoiceParams("en-gb+f2", 170, 60),
    "Orus": VoiceParams("en-gb+m3", 170, 45),
    "Zephyr": VoiceParams("en-us+f4", 180, 65),
}
DEFAULT_VOICE = "Puck"

# The sim's server VAD: energy thresholds per start-of-speech sensitivity, and the silence
# that ends a turn when the setup does not say (the service's own values are not published).
_START_DB = {
    "START_SENSITIVITY_HIGH": threshold_to_db(0.4),
    "START_SENSITIVITY_LOW": threshold_to_db(0.6),
}
DEFAULT_SILENCE_MS = 500.0
DEFAULT_PREFIX_MS = 300.0


@dataclass(frozen=True, slots=True)
class SetupConfig:
    """What one session was set up with (only what the sim acts on)."""

    model: str
    modality: Modality = "AUDIO"
    voice: str = DEFAULT_VOICE
    system_instruction: str = ""
    tool_names: tuple[str, ...] = ()
    automatic_vad: bool = True
    vad_threshold_db: float = threshold_to_db(0.5)
    silence_ms: float = DEFAULT_SILENCE_MS
    prefix_padding_ms: float = DEFAULT_PREFIX_MS
    interrupts: bool = True
    input_transcription: bool = False
    output_transcription: bool = False
    resumption: bool = False
    resume_handle: str | None = None

    @property
    def voice_params(self) -> VoiceParams:
        return GEMINI_VOICES.get(self.voice, VoiceParams())

    @property
    def brain_tools(self) -> list[dict[str, Any]]:
        """The declared functions in the shape the shared scenario brain reads."""
        return [{"type": "function", "name": name} for name in self.tool_names]


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        parts = field(content, "parts") or []
        return "\n".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))
    return ""


def _modality(generation: dict[str, Any]) -> Modality:
    modalities = field(generation, "responseModalities") or ["AUDIO"]
    if not isinstance(modalities, list) or len(modalities) != 1:
        raise WireError("Invalid argument: exactly one response modality is supported")
    value = str(modalities[0]).upper()
    if value not in ("AUDIO", "TEXT"):
        raise WireError(
            f"Invalid value at 'setup.generation_config.response_modalities[0]': {value}"
        )
    return "AUDIO" if value == "AUDIO" else "TEXT"


def _voice(generation: dict[str, Any]) -> str:
    speech = mapping(generation, "speechConfig", "setup.generation_config.speech_config") or {}
    voice = mapping(speech, "voiceConfig", "speech_config.voice_config") or {}
    prebuilt = mapping(voice, "prebuiltVoiceConfig", "voice_config.prebuilt_voice_config") or {}
    name = field(prebuilt, "voiceName")
    return name if isinstance(name, str) and name else DEFAULT_VOICE


def _tool_names(tools: Any) -> tuple[str, ...]:
    if tools is None:
        return ()
    if not isinstance(tools, list):
        raise WireError("Invalid value at 'setup.tools' (expected a list)")
    names: list[str] = []
    for tool in tools:
        declarations = field(tool, "functionDeclarations") if isinstance(tool, dict) else None
        for declaration in declarations or []:
            name = declaration.get("name") if isinstance(declaration, dict) else None
            if not isinstance(name, str) or not name:
                raise WireError("Invalid argument: every function declaration needs a name")
            names.append(name)
    return tuple(names)


def _vad(setup: dict[str, Any]) -> dict[str, Any]:
    realtime = mapping(setup, "realtimeInputConfig", "setup.realtime_input_config") or {}
    auto = mapping(realtime, "automaticActivityDetection", "automatic_activity_detection") or {}
    handling = field(realtime, "activityHandling") or "START_OF_ACTIVITY_INTERRUPTS"
    silence = field(auto, "silenceDurationMs")
    prefix = field(auto, "prefixPaddingMs")
    start = field(auto, "startOfSpeechSensitivity")
    return {
        "automatic_vad": not bool(field(auto, "disabled")),
        "vad_threshold_db": _START_DB.get(str(start), threshold_to_db(0.5)),
        "silence_ms": float(silence) if silence is not None else DEFAULT_SILENCE_MS,
        "prefix_padding_ms": float(prefix) if prefix is not None else DEFAULT_PREFIX_MS,
        "interrupts": handling != "NO_INTERRUPTION",
    }


def parse_setup(setup: Any) -> SetupConfig:
    """Validate a ``setup`` object into the session's :class:`SetupConfig`."""
    if not isinstance(setup, dict):
        raise WireError("Invalid value at 'setup' (expected an object)")
    model = field(setup, "model")
    if not isinstance(model, str) or not model.strip():
        raise WireError("Invalid argument: setup.model is required")
    generation = mapping(setup, "generationConfig", "setup.generation_config") or {}
    resumption = mapping(setup, "sessionResumption", "setup.session_resumption")
    handle = field(resumption, "handle") if resumption is not None else None
    return SetupConfig(
        model=model.removeprefix("models/"),
        modality=_modality(generation),
        voice=_voice(generation),
        system_instruction=_text_of(field(setup, "systemInstruction")),
        tool_names=_tool_names(field(setup, "tools")),
        input_transcription=field(setup, "inputAudioTranscription") is not None,
        output_transcription=field(setup, "outputAudioTranscription") is not None,
        resumption=resumption is not None,
        resume_handle=handle if isinstance(handle, str) and handle else None,
        **_vad(setup),
    )
