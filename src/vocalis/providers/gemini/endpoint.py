"""Where a Gemini Live session connects and how it authenticates.

Gemini Developer API: ``wss://generativelanguage.googleapis.com/ws/google.ai.generativelanguage.
{version}.GenerativeService.BidiGenerateContent`` with the key in ``x-goog-api-key``; an
ephemeral token (``auth_tokens/...``) uses the ``...BidiGenerateContentConstrained`` method
with ``Authorization: Token <token>``. Vertex AI: ``wss://{location}-aiplatform.googleapis.com/
ws/google.cloud.aiplatform.{version}.LlmBidiService/BidiGenerateContent`` with an OAuth bearer
token and the full model resource path. The key is read from ``GEMINI_API_KEY`` or
``GOOGLE_API_KEY`` when not given, and never appears in ``repr`` or logs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

DEVELOPER_BASE_URL = "wss://generativelanguage.googleapis.com"
DEFAULT_API_VERSION = "v1beta"


@dataclass(frozen=True)
class VertexAI:
    """Vertex AI instead of the Gemini Developer API.

    ``access_token`` is an OAuth token string or a callable returning a fresh one (e.g. from
    ``google.auth``); vocalis does not fetch credentials itself.
    """

    project: str
    location: str = "us-central1"
    access_token: str | Callable[[], str] = field(default="", repr=False)
    api_version: str = "v1beta1"

    def token(self) -> str:
        return self.access_token() if callable(self.access_token) else self.access_token

    def model_path(self, model: str) -> str:
        if model.startswith("projects/"):
            return model
        name = model.removeprefix("models/").removeprefix("publishers/google/models/")
        return f"projects/{self.project}/locations/{self.location}/publishers/google/models/{name}"


def api_key_from_env() -> str | None:
    return os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY") or None


def _ws_base(base_url: str) -> str:
    """``https://host:port/x`` -> ``wss://host:port/x`` (``http`` -> ``ws``), no trailing slash."""
    parts = urlsplit(base_url.rstrip("/"))
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, parts.path, "", ""))


def developer_url(base_url: str | None, api_version: str, *, ephemeral: bool) -> str:
    method = "BidiGenerateContentConstrained" if ephemeral else "BidiGenerateContent"
    base = _ws_base(base_url or DEVELOPER_BASE_URL)
    return f"{base}/ws/google.ai.generativelanguage.{api_version}.GenerativeService.{method}"


def vertex_url(vertex: VertexAI, base_url: str | None) -> str:
    base = _ws_base(base_url or f"wss://{vertex.location}-aiplatform.googleapis.com")
    return (
        f"{base}/ws/google.cloud.aiplatform.{vertex.api_version}.LlmBidiService/BidiGenerateContent"
    )


def auth_headers(api_key: str | None, vertex: VertexAI | None) -> dict[str, str]:
    if vertex is not None:
        token = vertex.token()
        return {"Authorization": f"Bearer {token}"} if token else {}
    if not api_key:
        return {}
    if api_key.startswith("auth_tokens/"):
        return {"Authorization": f"Token {api_key}"}
    return {"x-goog-api-key": api_key}
