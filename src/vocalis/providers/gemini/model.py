"""`GeminiRealtimeModel`: the configuration of Gemini Live sessions and their capabilities.

Where to connect and how to authenticate (Developer API key, ephemeral token, Vertex AI), which
heard-contract strategy to use, and the reconnect and timeout settings; `connect` opens a
`GeminiRealtimeSession` (the shell in `realtime.py`).
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any

from vocalis.providers.base import Capabilities, ProviderLimits, RealtimeModel, SessionOptions
from vocalis.providers.gemini import wire
from vocalis.providers.gemini.endpoint import (
    DEFAULT_API_VERSION,
    VertexAI,
    api_key_from_env,
    auth_headers,
    developer_url,
    vertex_url,
)
from vocalis.providers.gemini.heard import HeardStrategy

if TYPE_CHECKING:
    from vocalis.providers.gemini.realtime import GeminiRealtimeSession

DEFAULT_MODEL = "gemini-2.5-flash-native-audio-preview-09-2025"

CAPABILITIES = Capabilities(
    server_vad=True,
    server_interrupts_response=True,
    truncation=False,
    mutable_history=False,
    text_only_output=True,
    multi_message_responses=False,
    manual_turns=True,
    streaming_tool_arguments=False,
    input_sample_rate=wire.INPUT_RATE,
    output_sample_rate=wire.OUTPUT_RATE,
)


class GeminiRealtimeModel(RealtimeModel):
    """Configuration for Gemini Live sessions (Developer API or Vertex AI)."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        api_version: str = DEFAULT_API_VERSION,
        vertex: VertexAI | None = None,
        heard_strategy: HeardStrategy = HeardStrategy.RESEED,
        ssl_context: ssl.SSLContext | None = None,
        reconnect: bool = True,
        max_reconnect_attempts: int = 6,
        reconnect_backoff_s: float = 0.5,
        reconnect_backoff_max_s: float = 15.0,
        op_timeout_s: float = 10.0,
        connect_timeout_s: float = 15.0,
        continuation_grace_s: float = 15.0,
        limits: ProviderLimits | None = None,
        max_reseeds_per_minute: int = 6,
    ) -> None:
        self.model = model
        self._api_key = api_key if api_key is not None else api_key_from_env()
        self.base_url = base_url
        self.api_version = api_version
        self.vertex = vertex
        self.heard_strategy = heard_strategy
        self.ssl_context = ssl_context
        self.reconnect = reconnect
        self.max_reconnect_attempts = max_reconnect_attempts
        self.reconnect_backoff_s = reconnect_backoff_s
        self.reconnect_backoff_max_s = reconnect_backoff_max_s
        self.op_timeout_s = op_timeout_s
        self.connect_timeout_s = connect_timeout_s
        # What the service may make one call hold (the same bounds as every provider's).
        self.limits = limits or ProviderLimits()
        # Past it, heard checkpoints note first and re-seed later (`heard.ReseedBudget`).
        self.max_reseeds_per_minute = max_reseeds_per_minute
        self.continuation_grace_s = continuation_grace_s

    def __repr__(self) -> str:  # never show the key
        where = f"vertex={self.vertex.project}" if self.vertex else f"base_url={self.base_url!r}"
        strategy = self.heard_strategy.value
        return f"GeminiRealtimeModel({self.model!r}, {where}, heard_strategy={strategy})"

    @property
    def capabilities(self) -> Capabilities:
        return CAPABILITIES

    @property
    def url(self) -> str:
        if self.vertex is not None:
            return vertex_url(self.vertex, self.base_url)
        ephemeral = bool(self._api_key and self._api_key.startswith("auth_tokens/"))
        return developer_url(self.base_url, self.api_version, ephemeral=ephemeral)

    def headers(self) -> dict[str, str]:
        return auth_headers(self._api_key, self.vertex)

    def setup_for(self, options: SessionOptions, resume_handle: str | None) -> dict[str, Any]:
        path = self.vertex.model_path(self.model) if self.vertex is not None else None
        return wire.setup_message(
            self.model, options, resume_handle=resume_handle, vertex_model_path=path
        )

    async def connect(self, options: SessionOptions) -> GeminiRealtimeSession:
        from vocalis.providers.gemini.realtime import GeminiRealtimeSession

        session = GeminiRealtimeSession(self, options)
        await session.start()
        return session
