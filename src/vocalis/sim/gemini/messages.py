"""Builders for the server messages the sim sends (camelCase, as the service writes them).

Each function returns one ``BidiGenerateContentServerMessage`` object; a test validates every
one of them strictly against the ``google-genai`` SDK's ``LiveServerMessage`` type (unknown
fields refused), so a shape drifting from the SDK fails there, not in a user's agent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

OUTPUT_MIME = "audio/pcm;rate=24000"
# Audio counts 32 tokens per second in Gemini's token accounting (input and output); text is
# approximated at 4 characters per token. Used only for usageMetadata.
AUDIO_TOKENS_PER_S = 32
CHARS_PER_TOKEN = 4


def setup_complete() -> dict[str, Any]:
    return {"setupComplete": {}}


def audio_part(b64: str) -> dict[str, Any]:
    return {
        "serverContent": {
            "modelTurn": {"parts": [{"inlineData": {"mimeType": OUTPUT_MIME, "data": b64}}]}
        }
    }


def text_part(text: str) -> dict[str, Any]:
    return {"serverContent": {"modelTurn": {"parts": [{"text": text}]}}}


def output_transcription(text: str) -> dict[str, Any]:
    return {"serverContent": {"outputTranscription": {"text": text}}}


def input_transcription(text: str, *, finished: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"text": text}
    if finished:
        body["finished"] = True
    return {"serverContent": {"inputTranscription": body}}


def interrupted() -> dict[str, Any]:
    return {"serverContent": {"interrupted": True}}


def generation_complete() -> dict[str, Any]:
    return {"serverContent": {"generationComplete": True}}


def turn_complete() -> dict[str, Any]:
    return {"serverContent": {"turnComplete": True}}


@dataclass(frozen=True, slots=True)
class Call:
    """A function call as the sim announces it (``args`` is a JSON object)."""

    id: str
    name: str
    args: dict[str, Any]


def tool_call(calls: Sequence[Call]) -> dict[str, Any]:
    return {
        "toolCall": {
            "functionCalls": [
                {"id": call.id, "name": call.name, "args": call.args} for call in calls
            ]
        }
    }


def tool_call_cancellation(ids: Sequence[str]) -> dict[str, Any]:
    return {"toolCallCancellation": {"ids": list(ids)}}


def go_away(seconds_left: float) -> dict[str, Any]:
    # google.protobuf.Duration in JSON: decimal seconds with an "s" suffix.
    return {"goAway": {"timeLeft": f"{max(0.0, seconds_left):.3f}".rstrip("0").rstrip(".") + "s"}}


def resumption_update(handle: str | None) -> dict[str, Any]:
    """A new resumable handle, or ``resumable: false`` while the model is mid-turn."""
    if handle is None:
        return {"sessionResumptionUpdate": {"resumable": False}}
    return {"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}}


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one model turn, split by modality."""

    prompt_audio: int = 0
    prompt_text: int = 0
    response_audio: int = 0
    response_text: int = 0

    @property
    def prompt(self) -> int:
        return self.prompt_audio + self.prompt_text

    @property
    def response(self) -> int:
        return self.response_audio + self.response_text


def _details(audio: int, text: int) -> list[dict[str, Any]]:
    details = []
    if text:
        details.append({"modality": "TEXT", "tokenCount": text})
    if audio:
        details.append({"modality": "AUDIO", "tokenCount": audio})
    return details


def usage_metadata(usage: Usage) -> dict[str, Any]:
    body: dict[str, Any] = {
        "promptTokenCount": usage.prompt,
        "responseTokenCount": usage.response,
        "totalTokenCount": usage.prompt + usage.response,
    }
    if usage.prompt:
        body["promptTokensDetails"] = _details(usage.prompt_audio, usage.prompt_text)
    if usage.response:
        body["responseTokensDetails"] = _details(usage.response_audio, usage.response_text)
    return {"usageMetadata": body}


def text_tokens(text: str) -> int:
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


def audio_tokens(ms: float) -> int:
    return round(ms * AUDIO_TOKENS_PER_S / 1000.0)
