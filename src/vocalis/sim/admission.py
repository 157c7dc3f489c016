"""Whether a ``/v1/realtime`` WebSocket handshake is accepted, and as what session.

A pure decision (no sockets) so every refusal is tested directly: the credentials (any key
when auth is on, like the real API accepts any valid key; an ``ek_`` client secret only while
it is valid), ``?intent=transcription`` (a transcription session, which takes no ``model``),
``?call_id=`` (attaching to a WebRTC/SIP call, which the local server never has) and the
model. A refusal is an HTTP status with the real API's JSON error body.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vocalis.sim.client_secrets import PREFIX, ClientSecretStore, SecretRefused
from vocalis.sim.session_config import SessionKind

MISSING_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)
SUBPROTOCOL_KEY = "openai-insecure-api-key."


@dataclass(frozen=True, slots=True)
class Admitted:
    kind: SessionKind
    model: str
    requested_session: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    status: int
    message: str
    code: str | None = None


def credential(
    authorization: str | None, api_key: str | None, subprotocols: Sequence[str]
) -> str | None:
    """The key a client presents: ``Bearer``, Azure's ``api-key`` or the browser subprotocol."""
    if authorization and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
        if token:
            return token
    if api_key:
        return api_key
    for protocol in subprotocols:
        if protocol.startswith(SUBPROTOCOL_KEY) and len(protocol) > len(SUBPROTOCOL_KEY):
            return protocol[len(SUBPROTOCOL_KEY) :]
    return None


def admit(
    *,
    key: str | None,
    query: Mapping[str, str],
    require_auth: bool,
    default_model: str,
    secrets: ClientSecretStore,
) -> Admitted | Refused:
    """Decide one handshake (see the module docstring for the rules)."""
    if require_auth and key is None:
        return Refused(401, MISSING_KEY, "missing_api_key")
    call_id = query.get("call_id")
    if call_id is not None:
        return Refused(
            404,
            f"Call '{call_id}' not found: the local server (vocalis sim-server) has no WebRTC "
            "or SIP calls to attach to. Connect with ?model=... for a WebSocket session.",
            "call_not_found",
        )
    intent = query.get("intent")
    if intent is not None and intent != "transcription":
        return Refused(
            400,
            f"Invalid value: '{intent}'. Supported values are: 'transcription'.",
            "invalid_value",
        )
    if key is not None and key.startswith(PREFIX):
        try:
            secret = secrets.check(key)
        except SecretRefused as refused:
            return Refused(401, str(refused), "invalid_api_key")
        return Admitted(secret.kind, secret.model or default_model, secret.session_request)
    if intent == "transcription":
        if query.get("model"):
            # Text from third-party captures of the real API (GA, 2026).
            return Refused(
                400,
                "You must not provide a model parameter for transcription sessions.",
                "invalid_value",
            )
        return Admitted(SessionKind.TRANSCRIPTION, default_model)
    return Admitted(SessionKind.REALTIME, query.get("model") or default_model)
