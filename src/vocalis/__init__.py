"""vocalis: realtime voice agents whose memory matches what the caller heard.

The names a user needs first are importable from the top package (`from vocalis import Agent`);
they load lazily so `import vocalis` (and the CLI's `--help`) stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Agent": "vocalis.runtime.agent",
    "AgentSession": "vocalis.runtime.session",
    "AgentSessionOptions": "vocalis.runtime.options",
    "InterruptionOptions": "vocalis.runtime.options",
    "SpeechHandle": "vocalis.runtime.speech",
    "FunctionTool": "vocalis.runtime.tools",
    "function_tool": "vocalis.runtime.tools",
    "ToolError": "vocalis.runtime.tools",
    "ToolContext": "vocalis.runtime.context",
    "EspeakTTS": "vocalis.runtime.tts",
    "run_app": "vocalis.app.run_app",
    "CallInfo": "vocalis.transports.base",
    "AgentStateChanged": "vocalis.runtime.events",
    "UserStateChanged": "vocalis.runtime.events",
    "ConversationItemAdded": "vocalis.runtime.events",
    "UserTranscript": "vocalis.runtime.events",
    "ToolCallStarted": "vocalis.runtime.events",
    "ToolCallFinished": "vocalis.runtime.events",
    "Interrupted": "vocalis.runtime.events",
    "ErrorEvent": "vocalis.runtime.events",
    "TurnMetrics": "vocalis.runtime.events",
}

__all__ = [
    "Agent",
    "AgentSession",
    "AgentSessionOptions",
    "AgentStateChanged",
    "CallInfo",
    "ConversationItemAdded",
    "ErrorEvent",
    "EspeakTTS",
    "FunctionTool",
    "Interrupted",
    "InterruptionOptions",
    "SpeechHandle",
    "ToolCallFinished",
    "ToolCallStarted",
    "ToolContext",
    "ToolError",
    "TurnMetrics",
    "UserStateChanged",
    "UserTranscript",
    "__version__",
    "function_tool",
    "run_app",
]

if TYPE_CHECKING:
    from vocalis.app.run_app import run_app
    from vocalis.runtime.agent import Agent
    from vocalis.runtime.context import ToolContext
    from vocalis.runtime.events import (
        AgentStateChanged,
        ConversationItemAdded,
        ErrorEvent,
        Interrupted,
        ToolCallFinished,
        ToolCallStarted,
        TurnMetrics,
        UserStateChanged,
        UserTranscript,
    )
    from vocalis.runtime.options import AgentSessionOptions, InterruptionOptions
    from vocalis.runtime.session import AgentSession
    from vocalis.runtime.speech import SpeechHandle
    from vocalis.runtime.tools import FunctionTool, ToolError, function_tool
    from vocalis.runtime.tts import EspeakTTS
    from vocalis.transports.base import CallInfo


def __dir__() -> list[str]:
    """`dir(vocalis)` lists the public names (they load lazily, so they are not globals)."""
    return sorted(set(globals()) | set(__all__))


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vocalis' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
