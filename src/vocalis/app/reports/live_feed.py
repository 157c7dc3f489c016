"""What feeds the live transcript: typed session events and the transport's text sink.

Why: the terminal transcript (`LiveTranscript`) is a plain model; two things update it during
a call — the session's typed events (states, items, transcripts, tool calls, metrics, errors,
interruptions) and the transport's text sink (words as they play, per-message verdicts). Both
adapters live here, one small method per event, so a command only wires them up.
"""

from __future__ import annotations

from collections.abc import Callable

from vocalis.app.reports.live_view import LiveTranscript
from vocalis.conversation.items import FunctionCallItem, MessageItem
from vocalis.runtime.events import (
    AgentStateChanged,
    ConversationItemAdded,
    ErrorEvent,
    Interrupted,
    ToolCallFinished,
    ToolCallStarted,
    TurnMetrics,
    UserTranscript,
)
from vocalis.runtime.session import AgentSession
from vocalis.transports.base import PlayoutResult, PlayoutStatus, TextSink

_INTERRUPTION_TEXT = {
    "server_vad": "caller barged in: agent stopped (server VAD)",
    "local_vad": "caller barged in: agent stopped (local VAD)",
    "api": "agent interrupted by the application",
    "watchdog": "stalled response cancelled by the watchdog",
    "text": "caller typed a message: agent stopped",
}


class ViewTextSink(TextSink):
    """Words as they play and per-message verdicts, forwarded to the live transcript."""

    def __init__(self, model: LiveTranscript, refresh: Callable[[], None]) -> None:
        self.model = model
        self.refresh = refresh
        self.verdicts: list[tuple[str, PlayoutResult, str]] = []

    def agent_text(self, segment_id: str, text: str) -> None:
        self.model.agent_text(segment_id, text)
        self.refresh()

    def agent_segment_ended(self, segment_id: str, result: PlayoutResult, heard_text: str) -> None:
        self.verdicts.append((segment_id, result, heard_text))
        self.model.agent_message_ended(
            segment_id,
            interrupted=result.status is not PlayoutStatus.FULL,
            played_ms=result.played_ms,
            heard_text=heard_text,
        )
        self.refresh()

    def user_transcript(self, item_id: str, text: str, final: bool) -> None:
        self.model.user_said(item_id, text, final=final)
        self.refresh()

    def notice(self, message: str) -> None:
        self.model.notice(message, "warning")
        self.refresh()


class EventFeed:
    """Session events → the live transcript, then `refresh()` (words come via the sink)."""

    def __init__(
        self,
        model: LiveTranscript,
        refresh: Callable[[], None],
        on_state: Callable[[str], None] | None = None,
    ) -> None:
        self.model = model
        self.refresh = refresh
        self.on_state = on_state

    def attach(self, session: AgentSession) -> None:
        session.on(AgentStateChanged, self.state)
        session.on(ConversationItemAdded, self.item)
        session.on(UserTranscript, self.transcript)
        session.on(ToolCallStarted, self.tool_started)
        session.on(ToolCallFinished, self.tool_finished)
        session.on(TurnMetrics, self.metrics)
        session.on(ErrorEvent, self.error)
        session.on(Interrupted, self.interrupted)

    def state(self, event: AgentStateChanged) -> None:
        self.model.agent_state(event.new)
        if self.on_state is not None:
            self.on_state(event.new)
        self.refresh()

    def item(self, event: ConversationItemAdded) -> None:
        it = event.item
        if isinstance(it, MessageItem) and it.role == "user":
            # Without text yet, the transcript follows (UserTranscript); keep the line open.
            self.model.user_said(it.id, it.text, final=bool(it.text))
        elif isinstance(it, MessageItem) and it.role == "assistant":
            self.model.agent_message_ended(
                it.id,
                interrupted=it.interrupted,
                played_ms=it.played_ms,
                heard_text=it.text,
                generated_text=it.generated_text,
            )
        elif isinstance(it, FunctionCallItem):
            self.model.tool_started(it.call_id, it.name, it.arguments)
        self.refresh()

    def transcript(self, event: UserTranscript) -> None:
        self.model.user_said(event.item_id, event.text, final=event.final)
        self.refresh()

    def tool_started(self, event: ToolCallStarted) -> None:
        self.model.tool_started(event.call_id, event.name, event.arguments)
        self.refresh()

    def tool_finished(self, event: ToolCallFinished) -> None:
        self.model.tool_finished(event.call_id, event.output, is_error=event.is_error)
        self.refresh()

    def metrics(self, event: TurnMetrics) -> None:
        for message in event.messages:
            if message.played_ms <= 0:
                self.model.agent_message_generated(message.item_id, message.generated_text)
        if event.voice_to_voice_ms is not None:
            self.model.turn_latency(event.voice_to_voice_ms)
        self.refresh()

    def error(self, event: ErrorEvent) -> None:
        self.model.notice(event.message, "warning" if event.recoverable else "error")
        self.refresh()

    def interrupted(self, event: Interrupted) -> None:
        source = str(event.source)
        self.model.notice(_INTERRUPTION_TEXT.get(source, f"interrupted ({source})"))
        self.refresh()
