"""Per-response metrics: voice-to-voice latency, time to first audio, per-message playout.

Built once per response when it settles, from the playout's timestamps and the ledger's
verdicts; emitted as `TurnMetrics` and kept with the saved history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vocalis.conversation.ledger import Delete, LedgerResult, ProviderOp, Truncate
from vocalis.runtime.events import HistoryOp, MessageMetrics, TurnMetrics

if TYPE_CHECKING:
    from vocalis.runtime.response import ResponseRun


def turn_metrics(run: ResponseRun, result: LedgerResult) -> TurnMetrics:
    """The response's latency and per-message numbers (an event, and the saved history)."""
    playout = run.playout
    start = run.user_speech_end_at
    first_received = playout.first_audio_received_at
    first_played = playout.first_played_at
    first_voice = playout.first_voice_played_at
    anchor = start if start is not None else run.requested_at
    ops = {op.item_id: _history_op(op) for op in result.ops}
    messages = tuple(
        MessageMetrics(
            item_id=p.message.item_id,
            generated_ms=p.received_ms,
            played_ms=p.result.played_ms if p.result is not None else 0.0,
            playout=p.result.status.value if p.result is not None else "skipped",
            generated_text=p.message.account.text,
            pulled_at=p.pulled_at,
            started_at=p.result.started_at if p.result is not None else None,
            ended_at=p.result.ended_at if p.result is not None else None,
            history_op=ops.get(p.message.item_id, "none"),
        )
        for p in playout.pulled
    )
    return TurnMetrics(
        response_id=run.response_id,
        origin=run.handle.kind,
        user_speech_end_at=start,
        requested_at=run.requested_at,
        created_at=run.created_at,
        first_audio_received_at=first_received,
        first_audio_played_at=first_played,
        first_voice_played_at=first_voice,
        voice_to_voice_ms=(
            (first_voice - start) * 1000.0
            if first_voice is not None and start is not None
            else None
        ),
        time_to_first_audio_ms=(
            (first_received - anchor) * 1000.0
            if first_received is not None and anchor is not None
            else None
        ),
        playback_latency_ms=(
            (first_played - first_received) * 1000.0
            if first_played is not None and first_received is not None
            else None
        ),
        interrupted=run.interrupted or result.interrupted,
        status=run.done_info.status if run.done_info else None,
        messages=messages,
    )


def _history_op(op: ProviderOp) -> HistoryOp:
    if isinstance(op, Truncate):
        return "truncate"
    if isinstance(op, Delete):
        return "delete"
    return "replace_text"
