"""Which realtime endpoint a command talks to, and the flags that choose it.

Why: `run`, `serve` and `console` all follow the same rule, and a user must be able to predict
it: `--realtime-url` if given; else OpenAI when `OPENAI_API_KEY` is set; else the embedded
sim-server (so everything works offline with no key). The choice is a plain value
(`Endpoint`) so it can be tested without opening sockets, and it is printed once at start so
nobody wonders whether they are paying for tokens.
"""

from __future__ import annotations

import argparse
import os
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlparse

from vocalis.app.errors import UsageError

OPENAI_URL = "wss://api.openai.com/v1/realtime"
DEFAULT_MODEL = "gpt-realtime"
API_KEY_ENV = "OPENAI_API_KEY"
# Sent to a --realtime-url endpoint when no OPENAI_API_KEY is set (never a real secret).
LOCAL_PLACEHOLDER_KEY = "vocalis-no-key"

EndpointKind = Literal["url", "openai", "gemini", "embedded"]
# The wire protocol: OpenAI Realtime, or Gemini Live (picked by --provider, or by a model name
# starting with "gemini").
ProviderName = Literal["openai", "gemini"]
GEMINI_DEFAULT_MODEL = "gemini-2.5-flash-native-audio-preview-09-2025"
GEMINI_KEY_ENVS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")


@dataclass(frozen=True, slots=True)
class Endpoint:
    kind: EndpointKind
    # None for "embedded": the URL is known only once the embedded server listens.
    url: str | None
    model: str
    # Never printed; `describe()` leaves it out.
    api_key: str | None
    scenario: Path | None = None
    pace: float = 1.0
    provider: ProviderName = "openai"

    def describe(self) -> str:
        if self.kind == "embedded":
            scenario = f", scenario {self.scenario}" if self.scenario else ""
            dialect = ", Gemini Live" if self.provider == "gemini" else ""
            return f"embedded sim-server (offline{dialect}, model {self.model}{scenario})"
        where = {"openai": "OpenAI", "gemini": "Gemini Live"}.get(self.kind, self.url)
        return f"{where} (model {self.model})"


def add_endpoint_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "realtime endpoint",
        textwrap.fill(
            "--realtime-url if given; else OpenAI when OPENAI_API_KEY is set; "
            "else an embedded sim-server is started (offline, no key needed)"
        ),
    )
    group.add_argument(
        "--realtime-url",
        metavar="URL",
        help="an OpenAI-Realtime-protocol WebSocket, e.g. ws://127.0.0.1:8765/v1/realtime",
    )
    group.add_argument(
        "--provider",
        choices=("openai", "gemini"),
        help="wire protocol (default: gemini for a gemini-* --model, else openai); gemini "
        "uses GEMINI_API_KEY or GOOGLE_API_KEY",
    )
    group.add_argument(
        "--model",
        metavar="NAME",
        help=f"realtime model name (default: {DEFAULT_MODEL}; gemini: {GEMINI_DEFAULT_MODEL})",
    )
    group.add_argument(
        "--offline",
        action="store_true",
        help="always use the embedded sim-server, even when OPENAI_API_KEY is set",
    )
    group.add_argument(
        "--scenario",
        metavar="FILE",
        type=Path,
        help="scenario YAML/JSON for the embedded sim-server (default: its built-in brain); "
        "see docs/testing-with-sim-server.md",
    )
    group.add_argument(
        "--pace",
        metavar="X",
        type=float,
        default=None,
        help="embedded sim-server speed: 1 = real time, 4 = four times faster "
        "(default: 1; chat: as fast as possible)",
    )


def _check_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("ws", "wss") or not parsed.netloc:
        raise UsageError(f"--realtime-url must be a ws:// or wss:// URL, got {url!r}")
    return url


def choose_endpoint(
    args: argparse.Namespace, env: dict[str, str] | None = None, *, default_pace: float = 1.0
) -> Endpoint:
    """Apply the endpoint rule to parsed flags and the environment.

    `default_pace` is the embedded server's speed without `--pace` (0: as fast as possible,
    which a text chat wants: no audio plays, so nothing needs real-time pacing)."""
    environ = dict(os.environ) if env is None else env
    provider: ProviderName = getattr(args, "provider", None) or (
        "gemini" if (args.model or "").startswith("gemini") else "openai"
    )
    if provider == "gemini":
        return _gemini_endpoint(args, environ, default_pace)
    model = args.model or DEFAULT_MODEL
    scenario: Path | None = args.scenario
    if scenario is not None and not scenario.is_file():
        raise UsageError(f"scenario file not found: {scenario}")
    pace = default_pace if args.pace is None else args.pace
    if args.pace is not None and args.pace <= 0:
        raise UsageError(f"--pace must be positive, got {args.pace}")
    api_key = environ.get(API_KEY_ENV) or None
    if args.realtime_url and args.offline:
        raise UsageError("--realtime-url and --offline contradict each other: give one")
    if args.realtime_url and scenario is not None:
        # Silently ignoring the scenario would run an unscripted call and look like a bug.
        raise UsageError(
            "--scenario scripts the embedded sim-server and does nothing with --realtime-url: "
            "give it to that server (vocalis sim-server --scenario FILE) instead"
        )
    if args.realtime_url:
        url = _check_url(args.realtime_url)
        if not args.model:
            # `?model=` in the URL (as `vocalis sim-server` prints it) names the model.
            model = parse_qs(urlparse(url).query).get("model", [model])[0]
        # Local OpenAI-protocol servers (vocalis sim-server included) want *some* bearer token.
        return Endpoint("url", url, model, api_key or LOCAL_PLACEHOLDER_KEY)
    if api_key and not args.offline and scenario is None:
        return Endpoint("openai", OPENAI_URL, model, api_key)
    return Endpoint("embedded", None, model, None, scenario=scenario, pace=pace)


def _gemini_endpoint(
    args: argparse.Namespace, environ: dict[str, str], default_pace: float
) -> Endpoint:
    """The same rule for Gemini Live: --realtime-url (its root), else Google with a key in
    GEMINI_API_KEY / GOOGLE_API_KEY, else the embedded sim-server speaking Gemini."""
    model = args.model or GEMINI_DEFAULT_MODEL
    scenario: Path | None = args.scenario
    if scenario is not None and not scenario.is_file():
        raise UsageError(f"scenario file not found: {scenario}")
    if args.pace is not None and args.pace <= 0:
        raise UsageError(f"--pace must be positive, got {args.pace}")
    pace = default_pace if args.pace is None else args.pace
    api_key = next((environ[name] for name in GEMINI_KEY_ENVS if environ.get(name)), None)
    if args.realtime_url and (args.offline or scenario is not None):
        raise UsageError("--realtime-url cannot be combined with --offline or --scenario")
    if args.realtime_url:
        url = _check_url(args.realtime_url)
        return Endpoint("url", url, model, api_key or LOCAL_PLACEHOLDER_KEY, provider="gemini")
    if api_key and not args.offline and scenario is None:
        return Endpoint("gemini", None, model, api_key, provider="gemini")
    return Endpoint("embedded", None, model, None, scenario=scenario, pace=pace, provider="gemini")
