"""The OpenAI code -> neutral kind table: the runtime reacts to kinds, never to codes."""

from __future__ import annotations

import pytest

from vocalis.providers.base import ErrorKind
from vocalis.providers.openai.errors import error_kind


@pytest.mark.parametrize(
    ("code", "error_type", "kind"),
    [
        ("conversation_already_has_active_response", "invalid_request_error", ErrorKind.BUSY),
        ("invalid_api_key", "invalid_request_error", ErrorKind.FATAL),
        ("insufficient_quota", None, ErrorKind.FATAL),
        ("session_expired", "invalid_request_error", ErrorKind.EXPIRED),
        ("item_delete_invalid_item_id", None, ErrorKind.NOT_FOUND),
        ("input_audio_buffer_commit_empty", None, ErrorKind.INVALID),
        ("inference_rate_limit_exceeded", "rate_limit_exceeded", ErrorKind.RATE_LIMITED),
        # Unknown codes fall back to the error type, then to REJECTED.
        ("brand_new_code", "server_error", ErrorKind.SERVER),
        ("brand_new_code", "invalid_request_error", ErrorKind.INVALID),
        ("brand_new_code", None, ErrorKind.REJECTED),
        (None, None, ErrorKind.REJECTED),
    ],
)
def test_codes_map_to_neutral_kinds(
    code: str | None, error_type: str | None, kind: ErrorKind
) -> None:
    assert error_kind(code, error_type) is kind
