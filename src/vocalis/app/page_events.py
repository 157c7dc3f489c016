"""Session events → the playground page: what the agent is, its tool calls, latencies, errors.

Why: the page showed words and verdicts only; a developer trying an agent in the browser also
needs to see which agent, model and tools are loaded, every tool call with its arguments and
result (or error), how long each turn took to answer, and any error — without reading the
server's terminal. The transport carries opaque events (`PlaygroundTextSink.event`); what they
say is decided here, from the typed session events.
"""

from __future__ import annotations

from vocalis.runtime.agent import Agent
from vocalis.runtime.events import ErrorEvent, ToolCallFinished, ToolCallStarted, TurnMetrics
from vocalis.runtime.session import AgentSession
from vocalis.transports.playground import PlaygroundTextSink

# Tool outputs can be large (a search result); the page shows the start.
MAX_OUTPUT_CHARS = 2000


def describe_agent(sink: PlaygroundTextSink, agent: Agent, *, model: str, endpoint: str) -> None:
    sink.event(
        "agent",
        {
            "name": agent.name,
            "model": model,
            "endpoint": endpoint,
            "tools": [tool.name for tool in agent.tools],
        },
    )


def forward_events(session: AgentSession, sink: PlaygroundTextSink) -> None:
    """Subscribe the page to the session's tool, latency and error events."""

    def started(event: ToolCallStarted) -> None:
        sink.event(
            "tool_started",
            {"call_id": event.call_id, "name": event.name, "arguments": event.arguments},
        )

    def finished(event: ToolCallFinished) -> None:
        sink.event(
            "tool_finished",
            {
                "call_id": event.call_id,
                "name": event.name,
                "output": event.output[:MAX_OUTPUT_CHARS],
                "is_error": event.is_error,
                "duration_ms": round(event.duration_s * 1000.0),
            },
        )

    def latency(event: TurnMetrics) -> None:
        if event.voice_to_voice_ms is None and event.time_to_first_audio_ms is None:
            return
        sink.event(
            "latency",
            {
                "response_id": event.response_id,
                "items": [m.item_id for m in event.messages],
                "voice_to_voice_ms": _ms(event.voice_to_voice_ms),
                "time_to_first_audio_ms": _ms(event.time_to_first_audio_ms),
            },
        )

    def error(event: ErrorEvent) -> None:
        sink.event("error", {"message": event.message, "recoverable": event.recoverable})

    session.on(ToolCallStarted, started)
    session.on(ToolCallFinished, finished)
    session.on(TurnMetrics, latency)
    session.on(ErrorEvent, error)


def _ms(value: float | None) -> int | None:
    return None if value is None else round(value)
