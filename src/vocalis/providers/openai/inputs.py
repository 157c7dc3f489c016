"""The caller's side: input audio buffer events and input transcription.

Server VAD reports speech start/stop and commits the caller's turn as an item; the item's
transcript arrives later as deltas (OpenAI), cumulative updates (xAI) and a final text.
Transcripts are kept as parts per item — never re-copied per delta — and bounded
(`ProviderLimits` via `TextBounds`: per item and per call): partial events report the
cumulative text only up to `partial_transcript_chars`; beyond, only the final one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from vocalis.providers.base import (
    InputAudioCommitted,
    InputSpeechStarted,
    InputSpeechStopped,
    InputTranscription,
    ProviderLimits,
)
from vocalis.providers.item_bound import ItemBound
from vocalis.providers.limits import TextBounds
from vocalis.providers.openai.wire import ItemRefEvent, optional_str
from vocalis.utils.logsafe import WarnLimiter

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Transcript:
    parts: list[str] = field(default_factory=list)
    chars: int = 0

    def text(self) -> str:
        if len(self.parts) > 1:
            self.parts[:] = ["".join(self.parts)]
        return self.parts[0] if self.parts else ""


class InputTracker:
    """Committed caller items and their transcripts in progress (one provider session)."""

    def __init__(
        self, limits: ProviderLimits, bounds: TextBounds, item_bound: ItemBound, warn: WarnLimiter
    ) -> None:
        self.limits = limits
        self._bounds = bounds
        self._item_bound = item_bound
        self._warn = warn
        self.committed: set[str] = set()
        self._transcripts: dict[str, _Transcript] = {}

    def reset(self) -> None:
        self.committed.clear()
        self._transcripts.clear()

    @staticmethod
    def speech_started(ev: ItemRefEvent) -> InputSpeechStarted:
        return InputSpeechStarted(
            item_id=optional_str(ev.get("item_id")),
            audio_start_ms=float(ev.get("audio_start_ms") or 0.0),
        )

    @staticmethod
    def speech_stopped(ev: ItemRefEvent) -> InputSpeechStopped:
        return InputSpeechStopped(
            item_id=optional_str(ev.get("item_id")),
            audio_end_ms=float(ev.get("audio_end_ms") or 0.0),
        )

    def committed_item(self, ev: ItemRefEvent) -> InputAudioCommitted:
        item_id = str(ev["item_id"])
        if item_id not in self.committed:
            self._item_bound.take()
            self.committed.add(item_id)
        return InputAudioCommitted(item_id, optional_str(ev.get("previous_item_id")))

    def forget(self, item_id: str) -> None:
        """The provider deleted the item (its count stays: the runtime's history keeps it)."""
        self.committed.discard(item_id)

    # ----------------------------------------------------------------- transcription

    def _transcript(self, item_id: str) -> _Transcript:
        """The item's transcript so far; a transcript of an item never committed is a caller
        item too (the runtime keeps its final text): it counts against the item bound."""
        transcript = self._transcripts.get(item_id)
        if transcript is None:
            if item_id not in self.committed:
                self._item_bound.take()
            transcript = self._transcripts[item_id] = _Transcript()
        return transcript

    def _grow(self, item_id: str, text: str) -> str:
        """`text` (a cumulative or final transcript) as far as the bounds admit its growth."""
        transcript = self._transcript(item_id)
        had = transcript.chars
        kept = text[:had] + self._bounds.admit(item_id, had, text[had:])
        self._transcripts[item_id] = _Transcript([kept], len(kept))
        return kept

    def delta(self, ev: ItemRefEvent) -> InputTranscription | None:
        """A transcript delta; reported while the text stays under the partial bound."""
        item_id = str(ev["item_id"])
        transcript = self._transcript(item_id)
        delta = self._bounds.admit(item_id, transcript.chars, str(ev.get("delta") or ""))
        if not delta:
            return None
        transcript.parts.append(delta)
        transcript.chars += len(delta)
        if transcript.chars > self.limits.partial_transcript_chars:
            return None  # only the final transcript from here (no copy of the text per delta)
        return InputTranscription(item_id=item_id, text=transcript.text(), final=False)

    def updated(self, ev: ItemRefEvent) -> InputTranscription | None:
        """xAI: a cumulative transcript, not a delta."""
        item_id = str(ev["item_id"])
        text = self._grow(item_id, str(ev.get("transcript") or ""))
        if len(text) > self.limits.partial_transcript_chars:
            return None
        return InputTranscription(item_id=item_id, text=text, final=False)

    def completed(self, ev: ItemRefEvent) -> InputTranscription:
        item_id = str(ev["item_id"])
        text = self._grow(item_id, str(ev.get("transcript") or ""))
        self._transcripts.pop(item_id, None)
        return InputTranscription(item_id=item_id, text=text, final=True)

    def failed(self, ev: ItemRefEvent) -> InputTranscription:
        """Final with what was received, so nobody waits for a transcript that will not come."""
        item_id = str(ev["item_id"])
        err = ev.get("error")
        code = err.get("code") if isinstance(err, dict) else None
        if code == "audio_unintelligible":
            # No words in the audio (a cough, noise, the offline sim without a scripted
            # transcript): an outcome, not a malfunction — not worth a warning per turn.
            logger.info("input transcription found no words in %s", item_id)
        else:
            self._warn.warn(
                "transcription_failed", "input transcription failed for %s (%s)", item_id, code
            )
        transcript = self._transcripts.pop(item_id, None)
        text = transcript.text() if transcript is not None else ""
        return InputTranscription(item_id=item_id, text=text, final=True)
