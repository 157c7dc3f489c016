"""OpenAI error codes -> provider-neutral `ErrorKind`: the one table of this provider.

The runtime branches on `ErrorKind` only (`providers/base.py`); every OpenAI (and xAI/Azure
clone) code it must react to is classified here and nowhere else. Codes not listed keep their
string in `ProviderError.code` for messages and fall back to the error `type`, then to
`REJECTED`.
"""

from __future__ import annotations

from vocalis.providers.base import ErrorKind, ProviderError

# Codes that can never succeed on retry: reconnecting would loop.
_FATAL = (
    "invalid_api_key",
    "insufficient_quota",
    "account_deactivated",
    "billing_hard_limit_reached",
    "beta_api_shape_disabled",
)

CODE_KINDS: dict[str, ErrorKind] = {
    **dict.fromkeys(_FATAL, ErrorKind.FATAL),
    "conversation_already_has_active_response": ErrorKind.BUSY,
    "session_expired": ErrorKind.EXPIRED,
    "item_delete_invalid_item_id": ErrorKind.NOT_FOUND,
    "item_truncate_invalid_item_id": ErrorKind.NOT_FOUND,
    "item_retrieve_invalid_item_id": ErrorKind.NOT_FOUND,
    "item_create_invalid_previous_item_id": ErrorKind.NOT_FOUND,
    "response_cancel_not_active": ErrorKind.NOT_FOUND,
    "input_audio_buffer_commit_empty": ErrorKind.INVALID,
    "invalid_value": ErrorKind.INVALID,
    "unknown_parameter": ErrorKind.INVALID,
    "missing_required_parameter": ErrorKind.INVALID,
    "unsupported_content_type": ErrorKind.INVALID,
    "cannot_update_voice": ErrorKind.INVALID,
    "rate_limit_exceeded": ErrorKind.RATE_LIMITED,
    "inference_rate_limit_exceeded": ErrorKind.RATE_LIMITED,
    "server_error": ErrorKind.SERVER,
}

# The error `type` field, for codes the table does not know.
_TYPE_KINDS: dict[str, ErrorKind] = {
    "server_error": ErrorKind.SERVER,
    "rate_limit_exceeded": ErrorKind.RATE_LIMITED,
    "invalid_request_error": ErrorKind.INVALID,
}


def error_kind(code: str | None, error_type: str | None = None) -> ErrorKind:
    """The neutral kind of an OpenAI error (`code`, else its `type`, else REJECTED)."""
    if code is not None:
        kind = CODE_KINDS.get(code)
        if kind is not None:
            return kind
    if error_type is not None:
        return _TYPE_KINDS.get(error_type, ErrorKind.REJECTED)
    return ErrorKind.REJECTED


def local_error(
    kind: ErrorKind, message: str, *, operation: str | None = None, item_id: str | None = None
) -> ProviderError:
    """An error seen on this side (timeout, lost socket, closed session): code = kind name."""
    return ProviderError(kind, message, kind.value, operation=operation, item_id=item_id)
