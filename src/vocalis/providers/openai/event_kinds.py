"""How the OpenAI protocol core classifies server event types before dispatching them.

Why a module of its own: these tables are wire vocabulary (what GA clones call an event,
what carries nothing for the runtime, what can add one more tracked item), they change
when the API does, and the dispatcher in `protocol.py` should not grow with them.
"""

from __future__ import annotations

__all__ = ["EVENT_ALIASES", "IGNORED_EVENTS", "MALFORMED", "NEW_ITEM_EVENTS", "STREAMED_DELTAS"]

# Beta-era / clone names of GA events (xAI and Azure's legacy surface still send some).
EVENT_ALIASES = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    "conversation.item.created": "conversation.item.added",
}

# Events that announce an item the mirror will hold: checked against the mirror's size
# (`ProviderLimits.max_call_items`) before dispatch. Output and caller items are also counted
# where they are made, whatever event makes them (`responses.py`, `inputs.py`).
NEW_ITEM_EVENTS = frozenset(
    {
        "conversation.item.added",
        "conversation.item.done",
        "conversation.item.retrieved",
        "input_audio_buffer.committed",
        "response.output_item.added",
        "response.output_item.done",
    }
)

# Content deltas of a message: the most frequent events (an audio delta every ~40 ms per
# speaking session). Their ids are only looked up (the message's state holds its own copy),
# never kept, so `intern_kept_fields` has nothing to share on them and is skipped (~1 us
# each). (Only content for a never-announced item keeps its delta's id: one copy, warned.)
STREAMED_DELTAS = frozenset(
    {
        "response.output_audio.delta",
        "response.output_audio_transcript.delta",
        "response.output_text.delta",
    }
)

# Known events that carry nothing the runtime needs.
IGNORED_EVENTS = frozenset(
    {
        "conversation.created",
        "conversation.item.input_audio_transcription.segment",
        "rate_limits.updated",
        "response.content_part.done",
        "input_audio_buffer.timeout_triggered",
        "input_audio_buffer.dtmf_event_received",
        "output_audio_buffer.started",
        "output_audio_buffer.stopped",
        "output_audio_buffer.cleared",
        "response.mcp_call_arguments.delta",
        "response.mcp_call_arguments.done",
        "response.mcp_call.in_progress",
        "response.mcp_call.completed",
        "response.mcp_call.failed",
        "mcp_list_tools.in_progress",
        "mcp_list_tools.completed",
        "mcp_list_tools.failed",
        "ping",
    }
)

# A malformed event is skipped with a warning; these are what a bad field raises. OverflowError:
# an index of Infinity in int() (found by fuzzing).
MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError)
