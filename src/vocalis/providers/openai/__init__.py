"""OpenAI Realtime GA client (also Azure OpenAI v1 and xAI Grok voice).

`OpenAIRealtimeModel(...).connect(SessionOptions(...))` gives an `OpenAIRealtimeSession`
implementing `vocalis.providers.RealtimeSession`. The protocol logic is the sans-I/O
`OpenAIProtocol` (usable on its own, e.g. to replay recorded event logs); the mirror and the
history diff live in `mirror`.
"""

from vocalis.providers.openai.formats import AUDIO_FORMATS, AudioFormat, AudioFormatName
from vocalis.providers.openai.mirror import ConversationMirror, MirrorItem, SyncPlan, plan_sync
from vocalis.providers.openai.protocol import OpenAIProtocol
from vocalis.providers.openai.realtime import OpenAIRealtimeModel, OpenAIRealtimeSession
from vocalis.providers.openai.session_config import Dialect, build_session

__all__ = [
    "AUDIO_FORMATS",
    "AudioFormat",
    "AudioFormatName",
    "ConversationMirror",
    "Dialect",
    "MirrorItem",
    "OpenAIProtocol",
    "OpenAIRealtimeModel",
    "OpenAIRealtimeSession",
    "SyncPlan",
    "build_session",
    "plan_sync",
]
