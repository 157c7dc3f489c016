"""The server events of caller audio: a committed turn and its input transcription.

Pure builders (they return event dicts; the protocol core emits them). A committed audio turn
becomes a user item; a realtime session announces it with ``conversation.item.added/done``
(a transcription session has no conversation). Transcription, when configured, is the
scenario's ``user_transcript`` word by word, or ``failed`` (``audio_unintelligible``) when the
script has none — the sim has no speech recognition.
"""

from __future__ import annotations

from typing import Any

from vocalis.sim.conversation import Item
from vocalis.sim.voice import split_words

Event = dict[str, Any]


def user_audio_item(item_id: str, audio: bytes, bytes_per_ms: float) -> Item:
    return Item(
        id=item_id,
        type="message",
        role="user",
        content=[{"type": "input_audio", "transcript": None}],
        audio_source=audio,
        audio_nbytes=len(audio),
        bytes_per_ms=bytes_per_ms,
    )


def committed_events(item: Item, previous: str | None, *, announce: bool) -> list[Event]:
    events: list[Event] = [
        {"type": "input_audio_buffer.committed", "previous_item_id": previous, "item_id": item.id}
    ]
    if announce:
        wire = item.to_wire()
        events.append(
            {"type": "conversation.item.added", "previous_item_id": previous, "item": wire}
        )
        events.append(
            {"type": "conversation.item.done", "previous_item_id": previous, "item": wire}
        )
    return events


def transcription_events(item: Item, transcript: str | None) -> list[Event]:
    """Deltas then ``completed`` (the item's transcript is set), or ``failed``."""
    if transcript is None:
        error = {
            "type": "transcription_error",
            "code": "audio_unintelligible",
            "message": "The audio could not be transcribed.",
            "param": None,
        }
        return [
            {
                "type": "conversation.item.input_audio_transcription.failed",
                "item_id": item.id,
                "content_index": 0,
                "error": error,
            }
        ]
    events: list[Event] = [
        {
            "type": "conversation.item.input_audio_transcription.delta",
            "item_id": item.id,
            "content_index": 0,
            "delta": word.text,
        }
        for word in split_words(transcript)
    ]
    item.content[0]["transcript"] = transcript
    events.append(
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": item.id,
            "content_index": 0,
            "transcript": transcript,
            "usage": {"type": "duration", "seconds": round(item.audio_ms / 1000, 3)},
        }
    )
    return events
