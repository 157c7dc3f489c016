"""The error catalogue of the OpenAI Realtime GA API, as the local server emits it.

Every error the simulator can send is built here, so that the exact codes and message texts
(see ``openai-realtime-protocol.md`` §5.9) live in one place and clients can be tested against
the strings they will meet in production. Texts marked *unverified* are our best guess in the
style of the real API; everything else is verbatim from captures.

An error either echoes the offending client ``event_id`` (validation errors do) or carries
``null`` (truncate/delete/retrieve errors do in captures); ``echo_event_id`` records which.
"""

from __future__ import annotations

from typing import Any

INVALID_REQUEST = "invalid_request_error"


class RealtimeError(Exception):
    """A protocol error that becomes one ``error`` server event; the session stays open.

    ``fatal`` errors (session expiry, refused beta dialect) close the socket after sending.
    """

    def __init__(
        self,
        code: str | None,
        message: str,
        *,
        param: str | None = None,
        type: str = INVALID_REQUEST,
        echo_event_id: bool = True,
        fatal: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.type = type
        self.echo_event_id = echo_event_id
        self.fatal = fatal

    def payload(self, client_event_id: str | None = None) -> dict[str, Any]:
        """The ``error`` object of the server event (without the envelope)."""
        return {
            "type": self.type,
            "code": self.code,
            "message": self.message,
            "param": self.param,
            "event_id": client_event_id if self.echo_event_id else None,
        }


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "an unknown type"


def _quote(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else str(value)


def _supported(values: tuple[Any, ...]) -> str:
    quoted = [_quote(v) for v in values]
    if len(quoted) == 1:
        return quoted[0]
    if len(quoted) == 2:
        return f"{quoted[0]} and {quoted[1]}"
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


# --- generic validation errors (OpenAI API style) ---------------------------------------------


def invalid_event(message: str) -> RealtimeError:
    return RealtimeError("invalid_event", message)


def missing_type() -> RealtimeError:
    return invalid_event("The 'type' field is missing.")


def invalid_json(detail: str) -> RealtimeError:
    # Unverified text; the code matches the real server's for malformed events.
    return invalid_event(f"Invalid JSON: {detail}")


def unknown_event_type(event_type: str) -> RealtimeError:
    # Unverified text.
    return invalid_event(f"Invalid value: '{event_type}'. Unknown event type.")


def unknown_parameter(param: str) -> RealtimeError:
    return RealtimeError("unknown_parameter", f"Unknown parameter: '{param}'.", param=param)


def missing_parameter(param: str) -> RealtimeError:
    return RealtimeError(
        "missing_required_parameter", f"Missing required parameter: '{param}'.", param=param
    )


def invalid_type(param: str, expected: str, value: Any) -> RealtimeError:
    return RealtimeError(
        "invalid_type",
        f"Invalid type for '{param}': expected {expected}, but got {_type_name(value)} instead.",
        param=param,
    )


def invalid_value(param: str, value: Any, supported: tuple[Any, ...]) -> RealtimeError:
    return RealtimeError(
        "invalid_value",
        f"Invalid value: {_quote(value)}. Supported values are: {_supported(supported)}.",
        param=param,
    )


def out_of_range(param: str, value: float, bound: float, *, below: bool) -> RealtimeError:
    kind = "integer" if isinstance(value, int) and isinstance(bound, int) else "decimal"
    side = "below minimum" if below else "above maximum"
    op = ">=" if below else "<="
    code = f"{kind}_{'below_min' if below else 'above_max'}_value"
    return RealtimeError(
        code,
        f"Invalid '{param}': {kind} {side} value. Expected a value {op} {bound}, "
        f"but got {value} instead.",
        param=param,
    )


def string_too_long(param: str, limit: int, length: int) -> RealtimeError:
    return RealtimeError(
        "string_above_max_length",
        f"Invalid '{param}': string too long. Expected a string with maximum length {limit}, "
        f"but got a string with length {length} instead.",
        param=param,
    )


# --- session ------------------------------------------------------------------------------------


def cannot_update_voice() -> RealtimeError:
    return RealtimeError(
        "cannot_update_voice",
        "Cannot update a conversation's voice if assistant audio is present.",
        param="session.audio.output.voice",
    )


def session_expired() -> RealtimeError:
    return RealtimeError(
        "session_expired",
        "Your session hit the maximum duration of 60 minutes.",
        echo_event_id=False,
        fatal=True,
    )


def not_in_transcription_session(event_type: str) -> RealtimeError:
    # Unverified text: a transcription session has no conversation and no responses.
    return RealtimeError(
        "invalid_value",
        f"Invalid value: '{event_type}'. This event is not supported in transcription sessions.",
        param="type",
    )


def beta_api_shape_disabled() -> RealtimeError:
    return RealtimeError(
        "beta_api_shape_disabled",
        "The Realtime Beta API is no longer supported. Please use /v1/realtime for the GA API.",
        echo_event_id=False,
        fatal=True,
    )


# --- input audio buffer ------------------------------------------------------------------------


def commit_empty(buffered_ms: float) -> RealtimeError:
    return RealtimeError(
        "input_audio_buffer_commit_empty",
        "Error committing input audio buffer: buffer too small. Expected at least 100ms of "
        f"audio, but buffer only has {buffered_ms:.2f}ms of audio.",
        echo_event_id=False,
    )


SERVER_ERROR_MESSAGE = (
    "The server had an error while processing your request. Sorry about that! "
    "You can retry your request, or contact us through our help center if the error persists."
)


def server_error(
    code: str | None = None,
    message: str | None = None,
    *,
    param: str | None = None,
    type: str | None = None,
) -> RealtimeError:
    """An internal-error event, as the real API words it; scripted ``error`` faults override
    any field (an empty one falls back to the real default). Never echoes a client event id."""
    return RealtimeError(
        code or "server_error",
        message or SERVER_ERROR_MESSAGE,
        param=param,
        type=type or "server_error",
        echo_event_id=False,
    )


def audio_not_base64() -> RealtimeError:
    # Unverified text.
    return RealtimeError(
        "invalid_value", "Invalid 'audio': expected base64-encoded audio.", param="audio"
    )


# --- conversation items -------------------------------------------------------------------------


def item_delete_unknown(item_id: str) -> RealtimeError:
    return RealtimeError(
        "item_delete_invalid_item_id",
        f"Error deleting item: the item with id '{item_id}' does not exist.",
        echo_event_id=False,
    )


def item_retrieve_unknown(item_id: str) -> RealtimeError:
    return RealtimeError(
        "item_retrieve_invalid_item_id",
        f"Error retrieving item: the item with id '{item_id}' does not exist.",
        echo_event_id=False,
    )


def item_truncate_unknown(item_id: str) -> RealtimeError:
    # Code from captures; message unverified (same pattern as delete/retrieve).
    return RealtimeError(
        "item_truncate_invalid_item_id",
        f"Error truncating item: the item with id '{item_id}' does not exist.",
        echo_event_id=False,
    )


def truncate_past_end(item_audio_ms: int, audio_end_ms: int) -> RealtimeError:
    return RealtimeError(
        "invalid_value",
        f"Audio content of {item_audio_ms}ms is already shorter than {audio_end_ms}ms",
        echo_event_id=False,
    )


def truncate_not_audio() -> RealtimeError:
    return RealtimeError(
        "unsupported_content_type",
        "Only model output audio messages can be truncated",
        echo_event_id=False,
    )


def truncate_content_index(content_index: int) -> RealtimeError:
    # Unverified text.
    return RealtimeError(
        "invalid_value",
        f"Invalid 'content_index': only content index 0 can be truncated, got {content_index}.",
        param="content_index",
        echo_event_id=False,
    )


def previous_item_unknown(previous_item_id: str) -> RealtimeError:
    # Unverified text and code: the real API documents "an error will be returned".
    return RealtimeError(
        "invalid_value",
        f"Error adding item: the previous item with id '{previous_item_id}' does not exist.",
        param="previous_item_id",
    )


def duplicate_item_id(item_id: str) -> RealtimeError:
    # Unverified: gpt-realtime-1.5 silently appends a duplicate; we refuse it (see docs).
    return RealtimeError(
        "item_duplicate_id",
        f"Error adding item: the item with id '{item_id}' already exists.",
        param="item.id",
    )


def tool_call_unknown(call_id: str) -> RealtimeError:
    # Text from a third-party capture; code unverified.
    return RealtimeError(
        "invalid_value",
        f"Tool call ID '{call_id}' not found in conversation.",
        param="item.call_id",
    )


def assistant_audio_not_supported() -> RealtimeError:
    # Unverified text; the real API refuses client-created assistant audio.
    return RealtimeError(
        "invalid_value",
        "Invalid value: 'output_audio'. Assistant audio content cannot be created by clients; "
        "use 'output_text'.",
        param="item.content[0].type",
    )


# --- responses ----------------------------------------------------------------------------------


def active_response(response_id: str) -> RealtimeError:
    return RealtimeError(
        "conversation_already_has_active_response",
        f"Conversation already has an active response in progress: {response_id}. "
        "Wait until the response is finished before creating a new one.",
    )


def cancel_not_active() -> RealtimeError:
    return RealtimeError(
        "response_cancel_not_active", "Cancellation failed: no active response found"
    )
