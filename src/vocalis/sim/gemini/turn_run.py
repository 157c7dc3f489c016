"""One model turn being generated: audio chunks, transcription and tool calls on a schedule.

Two clocks, as on the real service (``LiveServerContent`` docs): content is *generated* on the
generation pace (``pace`` x real time; 0 = as fast as the socket takes it), and
``generationComplete`` follows the last chunk; the model then *assumes real-time playback*, so
``turnComplete`` comes only when the audio sent would have finished playing (from the first
chunk, back to back). A barge-in anywhere before ``turnComplete`` interrupts the turn: the
history keeps what was sent (see :mod:`~vocalis.sim.gemini.history`), the wire gets
``toolCallCancellation`` (if calls were pending), ``interrupted`` and ``turnComplete``.

Sans-I/O: :meth:`TurnRun.advance` takes the current time and returns the messages due.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vocalis.sim.brain import PlannedCall, PlannedMessage, ResponsePlan
from vocalis.sim.gemini import messages as msg
from vocalis.sim.gemini.history import HistoryPart, HistoryTurn, PartKind
from vocalis.sim.voice import Speech


class RunState(enum.Enum):
    GENERATING = "generating"
    AWAITING_TOOLS = "awaiting_tools"  # toolCall sent; the model waits for every response
    PLAYING = "playing"  # generationComplete sent; waiting for real-time playback to end
    DONE = "done"


@dataclass(frozen=True, slots=True)
class SpeechStep:
    speech: Speech


@dataclass(frozen=True, slots=True)
class CallStep:
    calls: tuple[msg.Call, ...]


Step = SpeechStep | CallStep
Speaker = Callable[[PlannedMessage], Speech]


def plan_steps(plan: ResponsePlan, speak: Speaker, new_call_id: Callable[[], str]) -> list[Step]:
    """A brain plan as steps: each message a speech, consecutive calls one ``toolCall``."""
    steps: list[Step] = []
    for item in plan.items:
        if isinstance(item, PlannedMessage):
            steps.append(SpeechStep(speak(item)))
            continue
        if not isinstance(item, PlannedCall):
            continue  # MCP items: the Gemini dialect declares no MCP tools
        call = _call(item, new_call_id)
        last = steps[-1] if steps else None
        if isinstance(last, CallStep):
            steps[-1] = CallStep((*last.calls, call))
        else:
            steps.append(CallStep((call,)))
    return steps


def _call(item: PlannedCall, new_call_id: Callable[[], str]) -> msg.Call:
    try:
        args = json.loads(item.arguments) if item.arguments else {}
    except ValueError:
        args = {"raw": item.arguments}
    if not isinstance(args, dict):
        args = {"value": args}
    return msg.Call(item.call_id or new_call_id(), item.name, args)


class TurnRun:
    """The wire schedule and the history growth of one model turn."""

    def __init__(
        self,
        steps: Sequence[Step],
        turn: HistoryTurn,
        *,
        now: float,
        pace: float,
        transcribe: bool,
        text_output: bool,
    ) -> None:
        self.turn = turn
        self.state = RunState.GENERATING
        self.pending_calls: tuple[msg.Call, ...] = ()
        self._steps = list(steps)
        self._pace = pace
        self._transcribe = transcribe
        self._text_output = text_output
        self._step = 0
        self._chunk = 0
        self._step_origin = now
        self._part: HistoryPart | None = None
        self._play_start: float | None = None
        self._audio_sent_ms = 0.0
        self._words_sent = 0
        self._spoken_before = False

    @property
    def audio_sent_ms(self) -> float:
        return self._audio_sent_ms

    @property
    def active(self) -> bool:
        """Not finished: a barge-in would interrupt it."""
        return self.state is not RunState.DONE

    def next_deadline(self) -> float | None:
        """When :meth:`advance` next has something to send (``None``: waiting on the client)."""
        if self.state is RunState.GENERATING:
            step = self._steps[self._step] if self._step < len(self._steps) else None
            if isinstance(step, SpeechStep) and self._chunk < len(step.speech.chunks):
                return self._due(step.speech.chunks[self._chunk].start_ms)
            return self._step_origin
        if self.state is RunState.PLAYING:
            return self._play_end()
        return None

    def advance(self, now: float) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while self.state is RunState.GENERATING:
            if self._step >= len(self._steps):
                out.append(msg.generation_complete())
                self.state = RunState.PLAYING
                break
            step = self._steps[self._step]
            if isinstance(step, CallStep):
                out.append(self._send_calls(step))
                break
            if not self._send_speech(step.speech, now, out):
                break
        if self.state is RunState.PLAYING and now >= self._play_end():
            out.append(msg.turn_complete())
            self.state = RunState.DONE
        return out

    def tool_responses_complete(self, answered: set[str]) -> bool:
        """Whether every pending call now has a response."""
        return all(call.id in answered for call in self.pending_calls)

    def interrupt(self) -> list[dict[str, Any]]:
        """Barge-in: freeze the turn with what was sent; the wire messages that say so."""
        out: list[dict[str, Any]] = []
        if self.state is RunState.AWAITING_TOOLS:
            out.append(msg.tool_call_cancellation([c.id for c in self.pending_calls]))
        out += [msg.interrupted(), msg.turn_complete()]
        self.turn.interrupted = True
        self.state = RunState.DONE
        return out

    def finish_tools(self) -> None:
        """Every call was answered: this turn ends here (the answer is a new turn)."""
        self.state = RunState.DONE

    # -- internals ------------------------------------------------------------------------

    def _due(self, start_ms: float) -> float:
        return self._step_origin + (start_ms / 1000.0 / self._pace if self._pace > 0 else 0.0)

    def _play_end(self) -> float:
        start = self._play_start if self._play_start is not None else self._step_origin
        return start + self._audio_sent_ms / 1000.0

    def _send_calls(self, step: CallStep) -> dict[str, Any]:
        for call in step.calls:
            self.turn.parts.append(
                HistoryPart("function_call", call_id=call.id, name=call.name, args=call.args)
            )
        self.pending_calls = step.calls
        self.state = RunState.AWAITING_TOOLS
        self._step += 1
        return msg.tool_call(step.calls)

    def _send_speech(self, speech: Speech, now: float, out: list[dict[str, Any]]) -> bool:
        """Send the chunks due by ``now``; ``True`` when the speech is fully sent."""
        if self._part is None:
            kind: PartKind = "text" if self._text_output else "audio"
            self._part = HistoryPart(kind, words=speech.words)
            self.turn.parts.append(self._part)
            self._words_sent = 0
            self._spoken_before = self._play_start is not None
            if self._play_start is None:
                self._play_start = now
        chunks = speech.chunks
        while self._chunk < len(chunks):
            chunk = chunks[self._chunk]
            if self._due(chunk.start_ms) > now:
                return False
            self._emit_chunk(speech, chunk.b64, chunk.start_ms + chunk.duration_ms, out)
            self._audio_sent_ms += chunk.duration_ms
            self._chunk += 1
        self._step += 1
        self._chunk = 0
        self._part = None
        self._step_origin = now
        return True

    def _emit_chunk(
        self, speech: Speech, b64: str, end_ms: float, out: list[dict[str, Any]]
    ) -> None:
        part = self._part
        assert part is not None
        begun = self._words_sent
        while begun < len(speech.words) and speech.words[begun].start_ms < end_ms:
            begun += 1
        words = "".join(w.text for w in speech.words[self._words_sent : begun])
        if self._words_sent == 0 and words and self._spoken_before:
            words = " " + words.lstrip()  # a later sentence of the same turn
        self._words_sent = begun
        if self._text_output:
            if words:
                out.append(msg.text_part(words))
        else:
            out.append(msg.audio_part(b64))
            if self._transcribe and words:
                out.append(msg.output_transcription(words))
        part.grow_audio(end_ms)
        if self._text_output:
            part.audio_ms = 0.0
