"""The sim-server's Gemini Live dialect (BidiGenerateContent over WebSocket).

A sans-I/O session core (:class:`~vocalis.sim.gemini.session.GeminiSimSession`) that speaks
the Gemini Live wire with real espeak speech, server VAD, tool calls and cancellations,
``goAway`` and session resumption, and keeps a faithful, test-inspectable model of the
server-side history (what was *sent*, not what was heard). It shares no code with the client
in ``vocalis.providers.gemini``; it reuses the sim's scenario script, brain and voice.
"""

from __future__ import annotations

from vocalis.sim.gemini.history import GeminiHistory, HistoryPart, HistoryTurn
from vocalis.sim.gemini.session import GeminiSimSession, SessionLimits

__all__ = ["GeminiHistory", "GeminiSimSession", "HistoryPart", "HistoryTurn", "SessionLimits"]
