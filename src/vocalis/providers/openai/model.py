"""`OpenAIRealtimeModel`: configuration and capabilities of an OpenAI-protocol endpoint.

One model object opens many sessions (`connect`); it holds no connection itself. The API key
is resolved here (argument, else the dialect's environment variables) and never shown
(`repr` omits it; `_headers` is the only reader).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlencode, urlsplit

from vocalis.providers.base import (
    Capabilities,
    ErrorKind,
    OperationError,
    ProviderLimits,
    RealtimeModel,
    SessionOptions,
)
from vocalis.providers.openai.formats import AudioFormat, AudioFormatName
from vocalis.providers.openai.formats import audio_format as lookup_audio_format
from vocalis.providers.openai.session_config import Dialect
from vocalis.providers.wsclient import SocketBackend, resolve_backend
from vocalis.utils.clock import Clock, MonotonicClock

if TYPE_CHECKING:
    from vocalis.providers.openai.realtime import OpenAIRealtimeSession

_DEFAULT_BASE_URLS: dict[Dialect, str] = {
    "openai": "wss://api.openai.com/v1",
    "azure": "",
    "xai": "wss://api.x.ai/v1",
}
_KEY_ENV: dict[Dialect, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "azure": ("AZURE_OPENAI_API_KEY", "OPENAI_API_KEY"),
    "xai": ("XAI_API_KEY",),
}
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def _capabilities(dialect: Dialect, fmt: AudioFormat) -> Capabilities:
    """OpenAI and Azure v1 support everything `Capabilities` describes (its defaults)."""
    capabilities = Capabilities(
        input_sample_rate=fmt.sample_rate, output_sample_rate=fmt.sample_rate
    )
    if dialect == "xai":
        # xAI: server VAD only (no manual turns); truncation, text-only output and
        # multi-message responses are not documented, so the runtime must not rely on them.
        return replace(
            capabilities,
            truncation=False,
            text_only_output=False,
            multi_message_responses=False,
            manual_turns=False,
        )
    return capabilities


# Caller audio per `input_audio_buffer.append`. 40 ms: half the WebSocket messages (and half
# the provider's JSON parses) of per-frame appends, for at most one 20 ms frame of later VAD
# onset/offset (bench/input_chunk.py). 100 ms would save more but delays barge-in detection
# by up to 80 ms — audible as the agent talking over the caller.
DEFAULT_INPUT_CHUNK_MS = 40
# Quiet caller audio outside a caller turn (the caller listening to the agent) per append:
# nothing a VAD decides on, so it may wait longer; the first frame with sound sends it all.
# 200 ms: a fifth of the appends of the normal chunk for most of a call (appends.py).
DEFAULT_QUIET_INPUT_CHUNK_MS = 200
MAX_INPUT_CHUNK_MS = 200


def _ws_url(base_url: str, model: str) -> str:
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://") :]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://") :]
    return f"{base}/realtime?{urlencode({'model': model})}"


class OpenAIRealtimeModel(RealtimeModel):
    """OpenAI Realtime GA (also Azure OpenAI v1 and xAI Grok voice) over WebSocket.

    `api_key` defaults to `OPENAI_API_KEY` (`AZURE_OPENAI_API_KEY` for Azure, `XAI_API_KEY`
    for xAI); a local `base_url` (e.g. `vocalis sim-server`) may go without a key.
    `base_url` is the API root (`wss://api.openai.com/v1`, `https://<res>.openai.azure.com/
    openai/v1`, `wss://api.x.ai/v1`); the socket is `<base_url>/realtime?model=<model>`.
    `input_chunk_ms` batches caller audio into one append per that many ms (default 40: half
    the messages of per-frame appends for at most 20 ms later provider VAD; 0 = every frame
    is sent as it comes); `quiet_input_chunk_ms` (default 200, 0 = off) is the chunk for
    quiet audio (every sample within −50 dBFS) while the provider's VAD is not inside a
    caller turn — the caller listening — which no turn decision waits on (it applies with
    `input_chunk_ms=0` too; set both to 0 for strictly one append per frame); see
    `providers/openai/appends.py`. `websocket_backend` picks the
    WebSocket library: `auto` (default) is picows when the `fast` extra is installed (about
    half the CPU per message), else websockets — see `providers/wsclient.py`.
    """

    def __init__(
        self,
        model: str = "gpt-realtime",
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        dialect: Dialect = "openai",
        audio_format: AudioFormatName = "pcm16",
        max_session_seconds: float = 55 * 60,
        reconnect: bool = True,
        max_reconnect_attempts: int = 6,
        reconnect_backoff_s: float = 0.5,
        reconnect_backoff_max_s: float = 15.0,
        reconnect_stable_s: float = 30.0,
        op_timeout_s: float = 10.0,
        connect_timeout_s: float = 15.0,
        input_chunk_ms: int = DEFAULT_INPUT_CHUNK_MS,
        quiet_input_chunk_ms: int = DEFAULT_QUIET_INPUT_CHUNK_MS,
        limits: ProviderLimits | None = None,
        clock: Clock | None = None,
        websocket_backend: SocketBackend | Literal["auto"] = "auto",
    ) -> None:
        if dialect not in _DEFAULT_BASE_URLS:
            raise ValueError(f"unknown dialect {dialect!r}; use openai, azure or xai")
        if not 0 <= input_chunk_ms <= MAX_INPUT_CHUNK_MS:
            raise ValueError(
                f"input_chunk_ms must be 0..{MAX_INPUT_CHUNK_MS}, got {input_chunk_ms}"
            )
        self.model = model
        self.dialect: Dialect = dialect
        self.base_url = base_url or _DEFAULT_BASE_URLS[dialect]
        if not self.base_url:
            raise ValueError("Azure needs base_url='https://<resource>.openai.azure.com/openai/v1'")
        self.audio_format = lookup_audio_format(audio_format)
        if not 0 <= quiet_input_chunk_ms <= MAX_INPUT_CHUNK_MS:
            raise ValueError(
                f"quiet_input_chunk_ms must be 0..{MAX_INPUT_CHUNK_MS}, got {quiet_input_chunk_ms}"
            )
        self.input_chunk_ms = input_chunk_ms
        self.quiet_input_chunk_ms = quiet_input_chunk_ms
        self.max_session_seconds = max_session_seconds
        self.reconnect = reconnect
        self.max_reconnect_attempts = max_reconnect_attempts
        self.reconnect_backoff_s = reconnect_backoff_s
        self.reconnect_backoff_max_s = reconnect_backoff_max_s
        self.reconnect_stable_s = reconnect_stable_s
        self.limits = limits or ProviderLimits()
        self.op_timeout_s = op_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.clock: Clock = clock or MonotonicClock()
        self._api_key = api_key or next(
            (os.environ[name] for name in _KEY_ENV[dialect] if os.environ.get(name)), None
        )
        self._capabilities = _capabilities(dialect, self.audio_format)
        # Which WebSocket library carries the socket (`providers/wsclient.py`): picows when
        # the `fast` extra is installed, else websockets; `VOCALIS_WEBSOCKET` overrides auto.
        self.socket_backend: SocketBackend = resolve_backend(websocket_backend)

    def __repr__(self) -> str:  # never show the key
        return (
            f"OpenAIRealtimeModel(model={self.model!r}, base_url={self.base_url!r}, "
            f"dialect={self.dialect!r}, audio_format={self.audio_format.name!r})"
        )

    @property
    def capabilities(self) -> Capabilities:
        return self._capabilities

    @property
    def input_chunk_samples(self) -> int:
        """Caller samples (at the wire rate) per append; 1 sends every frame as it comes."""
        return max(1, self.audio_format.sample_rate * self.input_chunk_ms // 1000)

    @property
    def quiet_input_chunk_samples(self) -> int:
        """Caller samples per append while quiet outside a caller turn (at most the normal
        chunk: quiet audio is batched like any other)."""
        return self.audio_format.sample_rate * self.quiet_input_chunk_ms // 1000

    @property
    def url(self) -> str:
        return _ws_url(self.base_url, self.model)

    def _headers(self) -> dict[str, str]:
        # Never the retired `OpenAI-Beta: realtime=v1` header: GA refuses the beta dialect.
        if self._api_key is None:
            host = urlsplit(self.url).hostname or ""
            if host not in _LOCAL_HOSTS:
                names = " or ".join(_KEY_ENV[self.dialect])
                raise OperationError(
                    ErrorKind.FATAL, f"no API key: pass api_key= or set {names}", "invalid_api_key"
                )
            return {}
        if self.dialect == "azure":
            return {"api-key": self._api_key}
        return {"Authorization": f"Bearer {self._api_key}"}

    async def connect(self, options: SessionOptions) -> OpenAIRealtimeSession:
        from vocalis.providers.openai.realtime import OpenAIRealtimeSession

        session = OpenAIRealtimeSession(self, options)
        await session._start()
        return session
