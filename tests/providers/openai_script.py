"""Builders for OpenAI Realtime GA server event sequences (protocol doc §4) used by unit tests."""

from __future__ import annotations

import binascii
import itertools
from typing import Any

import numpy as np

_counter = itertools.count(1)


def audio_b64(ms: int, *, value: int = 100) -> str:
    """Base64 PCM16 24 kHz mono of `ms` ms (constant `value`, so tests can tell items apart)."""
    samples = np.full(ms * 24, value, dtype="<i2")
    return binascii.b2a_base64(samples.tobytes(), newline=False).decode()


def ev(type_: str, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "event_id": f"event_{next(_counter)}", **fields}


def user_turn(user_id: str, previous: str | None = None) -> list[dict[str, Any]]:
    return [
        ev("input_audio_buffer.speech_started", audio_start_ms=100, item_id=user_id),
        ev("input_audio_buffer.speech_stopped", audio_end_ms=900, item_id=user_id),
        ev("input_audio_buffer.committed", item_id=user_id, previous_item_id=previous),
        ev(
            "conversation.item.added",
            previous_item_id=previous,
            item={
                "id": user_id,
                "type": "message",
                "role": "user",
                "status": "completed",
                "content": [{"type": "input_audio", "transcript": None}],
            },
        ),
        ev(
            "conversation.item.done",
            previous_item_id=previous,
            item={
                "id": user_id,
                "type": "message",
                "role": "user",
                "status": "completed",
                "content": [{"type": "input_audio", "transcript": None}],
            },
        ),
    ]


def response_created(
    response_id: str, *, metadata: dict[str, Any] | None = None, modalities: list[str] | None = None
) -> dict[str, Any]:
    return ev(
        "response.created",
        response={
            "object": "realtime.response",
            "id": response_id,
            "status": "in_progress",
            "output": [],
            "output_modalities": modalities or ["audio"],
            "metadata": metadata,
        },
    )


def message_start(
    response_id: str, item_id: str, index: int, previous: str | None, *, part: str = "audio"
) -> list[dict[str, Any]]:
    item = {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": "in_progress",
        "content": [],
    }
    return [
        ev("response.output_item.added", response_id=response_id, output_index=index, item=item),
        ev("conversation.item.added", previous_item_id=previous, item=item),
        ev(
            "response.content_part.added",
            response_id=response_id,
            item_id=item_id,
            output_index=index,
            content_index=0,
            part={"type": part, "transcript": ""},
        ),
    ]


def message_deltas(
    response_id: str, item_id: str, index: int, words: list[str], chunk_ms: int, value: int = 100
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    common = {
        "response_id": response_id,
        "item_id": item_id,
        "output_index": index,
        "content_index": 0,
    }
    for word in words:
        out.append(ev("response.output_audio_transcript.delta", delta=word, **common))
        out.append(
            ev("response.output_audio.delta", delta=audio_b64(chunk_ms, value=value), **common)
        )
    return out


def message_end(
    response_id: str,
    item_id: str,
    index: int,
    transcript: str,
    previous: str | None,
    *,
    status: str = "completed",
    item_content_type: str = "output_audio",
) -> list[dict[str, Any]]:
    common = {
        "response_id": response_id,
        "item_id": item_id,
        "output_index": index,
        "content_index": 0,
    }
    item = {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [{"type": item_content_type, "transcript": transcript}],
    }
    return [
        ev("response.output_audio.done", **common),
        ev("response.output_audio_transcript.done", transcript=transcript, **common),
        ev(
            "response.content_part.done",
            part={"type": "audio", "transcript": transcript},
            **common,
        ),
        ev("response.output_item.done", response_id=response_id, output_index=index, item=item),
        ev("conversation.item.done", previous_item_id=previous, item=item),
    ]


def function_call(
    response_id: str, item_id: str, index: int, call_id: str, name: str, arg_chunks: list[str]
) -> list[dict[str, Any]]:
    args = "".join(arg_chunks)
    added = {
        "id": item_id,
        "type": "function_call",
        "status": "in_progress",
        "call_id": call_id,
        "name": name,
        "arguments": "",
    }
    done = dict(added, status="completed", arguments=args)
    common = {"response_id": response_id, "item_id": item_id, "output_index": index}
    out = [
        ev("response.output_item.added", response_id=response_id, output_index=index, item=added),
        ev("conversation.item.added", item=added),
    ]
    for chunk in arg_chunks:
        out.append(
            ev("response.function_call_arguments.delta", call_id=call_id, delta=chunk, **common)
        )
    out += [
        ev(
            "response.function_call_arguments.done",
            call_id=call_id,
            name=name,
            arguments=args,
            **common,
        ),
        ev("response.output_item.done", response_id=response_id, output_index=index, item=done),
        ev("conversation.item.done", item=done),
    ]
    return out


def response_done(
    response_id: str,
    output: list[dict[str, Any]],
    *,
    status: str = "completed",
    reason: str | None = None,
) -> dict[str, Any]:
    details = None if status == "completed" else {"type": status, "reason": reason}
    return ev(
        "response.done",
        response={
            "object": "realtime.response",
            "id": response_id,
            "status": status,
            "status_details": details,
            "output": output,
            "usage": {"total_tokens": 10},
        },
    )


def error(
    code: str | None,
    message: str,
    event_id: str | None = None,
    type_: str = "invalid_request_error",
) -> dict[str, Any]:
    return ev(
        "error",
        error={
            "type": type_,
            "code": code,
            "message": message,
            "param": None,
            "event_id": event_id,
        },
    )
