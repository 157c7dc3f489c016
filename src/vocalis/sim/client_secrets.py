"""Ephemeral client secrets (``POST /v1/realtime/client_secrets``), as a pure store.

Why: browsers and phones must not hold a real API key, so a backend mints a short-lived
``ek_…`` secret bound to a session configuration and hands it to the client, which connects
with it. The local server does the same so that such a backend can be tested offline: a secret
is accepted by the WebSocket until it expires (``expires_after.seconds``, 10–7200, default
600 — "a secret can be used to create multiple sessions until it expires", per the SDK), and
the session it opens starts from the configuration the secret was made with. Time is passed in
(``now``), so expiry is tested without waiting.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vocalis.sim import errors
from vocalis.sim import fields as f
from vocalis.sim.session_config import (
    SessionKind,
    default_session,
    default_transcription_session,
    session_from_request,
)

DEFAULT_TTL_S = 600
MIN_TTL_S = 10
MAX_TTL_S = 7200
PREFIX = "ek_"


@dataclass(frozen=True, slots=True)
class ClientSecret:
    """One minted secret: its value, when it stops opening sessions, and what it opens."""

    value: str
    expires_at: int
    kind: SessionKind
    model: str | None
    session_request: dict[str, Any]


class SecretRefused(Exception):
    """A WebSocket presented an ``ek_`` secret that is unknown or expired (HTTP 401)."""


def _ttl(body: dict[str, Any]) -> int:
    expires_after = body.get("expires_after")
    if expires_after is None:
        return DEFAULT_TTL_S
    expires_after = f.an_object("expires_after", expires_after)
    f.only_keys("expires_after", expires_after, ("anchor", "seconds"))
    if expires_after.get("anchor") is not None:
        f.enum("expires_after.anchor", expires_after["anchor"], ("created_at",))
    seconds = expires_after.get("seconds")
    if seconds is None:
        return DEFAULT_TTL_S
    return f.integer("expires_after.seconds", seconds, MIN_TTL_S, MAX_TTL_S)


class ClientSecretStore:
    """Secrets minted by one server; ``now`` is the wall clock (seconds since the epoch)."""

    def __init__(self, *, default_model: str, now: Callable[[], float] = time.time) -> None:
        self._default_model = default_model
        self._now = now
        self._secrets: dict[str, ClientSecret] = {}

    def create(self, body: Any, *, session_id: str) -> dict[str, Any]:
        """Validate a request body, mint a secret, return the response JSON (raises
        :class:`~vocalis.sim.errors.RealtimeError` with the field at fault)."""
        body = {} if body is None else f.an_object("body", body)
        f.only_keys("body", body, ("expires_after", "session"))
        ttl = _ttl(body)
        request = body.get("session")
        request = {"type": "realtime"} if request is None else f.an_object("session", request)
        if request.get("type") is None:
            raise errors.missing_parameter("session.type")
        kind = SessionKind(f.enum("session.type", request["type"], tuple(SessionKind)))
        now = self._now()
        expires_at = int(now + ttl)
        if kind is SessionKind.TRANSCRIPTION:
            base = default_transcription_session(session_id=session_id, expires_at=expires_at)
        else:
            model = request.get("model") or self._default_model
            base = default_session(session_id=session_id, model=model, expires_at=expires_at)
        session = session_from_request(kind, base, request)
        self._forget_expired(now)
        secret = ClientSecret(
            value=PREFIX + secrets.token_urlsafe(24),
            expires_at=expires_at,
            kind=kind,
            model=session.get("model"),
            session_request=request,
        )
        self._secrets[secret.value] = secret
        return {"value": secret.value, "expires_at": expires_at, "session": session}

    def check(self, value: str) -> ClientSecret:
        """The secret a connection presents, or :class:`SecretRefused`."""
        secret = self._secrets.get(value)
        if secret is None:
            raise SecretRefused("The client secret is not valid on this server.")
        if self._now() >= secret.expires_at:
            raise SecretRefused("The client secret has expired. Mint a new one.")
        return secret

    def _forget_expired(self, now: float) -> None:
        for value in [v for v, s in self._secrets.items() if now >= s.expires_at]:
            del self._secrets[value]
