"""Span, span-event and attribute names: one place, so docs, dashboards and tests agree.

Names follow the OpenTelemetry GenAI semantic conventions where one fits (`gen_ai.*` for the
response id and tool calls, `error.type`), and a `vocalis.` prefix for the voice facts no
convention covers yet (what was played and heard). Every value is a number, a boolean or a
short bounded string — never audio, never credentials; conversation text only under the
content opt-in (`*_TEXT` keys below).
"""

from __future__ import annotations

import enum


class SpanName(enum.StrEnum):
    CALL = "vocalis.call"
    CONNECTION = "vocalis.provider.connection"
    RECONNECT = "vocalis.provider.reconnect"
    USER_TURN = "vocalis.user_turn"
    RESPONSE = "vocalis.response"
    MESSAGE = "vocalis.assistant_message"
    TOOL_CALL = "vocalis.tool_call"


class EventName(enum.StrEnum):
    BARGE_IN = "vocalis.barge_in"  # caller speech (or a typed message) cut the agent off
    INTERRUPTED = "vocalis.interrupted"  # the app (or a watchdog) stopped the agent
    STALL_WATCHDOG = "vocalis.stall_watchdog"
    ERROR = "vocalis.error"


# --- call
PROVIDER = "vocalis.provider"  # the provider session's class name
CLOSE_REASON = "vocalis.call.close_reason"
RESPONSES = "vocalis.call.responses"
USER_TURNS = "vocalis.call.user_turns"
RECONNECTS = "vocalis.call.reconnects"

# --- provider connection / reconnect
CONNECT_MS = "vocalis.provider.connect_ms"
CONNECTION_INDEX = "vocalis.provider.connection_index"
END_REASON = "vocalis.provider.end_reason"
RECONNECT_REASON = "vocalis.provider.reconnect_reason"
OUTAGE_MS = "vocalis.provider.outage_ms"
REPLAYED_ITEMS = "vocalis.provider.replayed_items"

# --- user turn
TURN_INDEX = "vocalis.turn.index"
TURN_INPUT = "vocalis.turn.input"  # "speech" | "text"
ITEM_ID = "vocalis.item_id"
SPEECH_MS = "vocalis.turn.speech_ms"
TRANSCRIPT_CHARS = "vocalis.turn.transcript_chars"
TRANSCRIPT_TEXT = "vocalis.turn.transcript"  # content opt-in

# --- response
RESPONSE_ID = "gen_ai.response.id"
ORIGIN = "vocalis.response.origin"  # server | reply | say | tool_followup
STATUS = "vocalis.response.status"
INTERRUPTED = "vocalis.response.interrupted"
TURN_LATENCY_MS = "vocalis.response.turn_latency_ms"  # caller speech end -> first played frame
VOICE_TO_VOICE_MS = "vocalis.response.voice_to_voice_ms"
TIME_TO_FIRST_AUDIO_MS = "vocalis.response.time_to_first_audio_ms"
MESSAGES = "vocalis.response.messages"

# --- assistant message
GENERATED_MS = "vocalis.message.generated_ms"
PLAYED_MS = "vocalis.message.played_ms"
HEARD_CHARS = "vocalis.message.heard_chars"
OUTCOME = "vocalis.message.outcome"  # full | partial | skipped
HISTORY_OP = "vocalis.message.history_op"  # none | truncate | delete | replace_text
HEARD_TEXT = "vocalis.message.heard_text"  # content opt-in
GENERATED_TEXT = "vocalis.message.generated_text"  # content opt-in

# --- tool call
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
ARGUMENTS_BYTES = "vocalis.tool.arguments_bytes"
OUTPUT_BYTES = "vocalis.tool.output_bytes"
DURATION_MS = "vocalis.tool.duration_ms"
TOOL_ERROR = "vocalis.tool.error"
ARGUMENTS_TEXT = "vocalis.tool.arguments"  # content opt-in
OUTPUT_TEXT = "vocalis.tool.output"  # content opt-in
ERROR_TYPE = "error.type"

# --- span events
SOURCE = "vocalis.interrupt.source"
ERROR_CODE = "vocalis.error.code"
ERROR_OPERATION = "vocalis.error.operation"
ERROR_SOURCE = "vocalis.error.source"
ERROR_RECOVERABLE = "vocalis.error.recoverable"
ERROR_MESSAGE = "vocalis.error.message"
WATCHDOG_ACTION = "vocalis.watchdog.action"  # cancel | release
