"""A simulated caller: scripted lines spoken with espeak-ng, with human-like turn taking.

It lives next to the simulated model (the sim-server) because it is its counterpart: the
sim plays the model, this plays the person calling — together they make an offline call
(`vocalis demo`, end-to-end tests). It is a test actor, not part of the runtime.

Why: the demo and the end-to-end tests need someone on the other end of the line who speaks
real audio (so the server's VAD and the word timings are realistic), waits for the agent to
finish before talking again — or deliberately barges in at a chosen point of the agent's
answer, which is the case the heard contract exists for.

The caller is an `AudioSource`: it produces a continuous real-time stream of 20 ms frames —
speech while it talks, silence otherwise — paced on a `Clock`, so tests can drive it with a
`ManualClock`. It learns what the agent does through `on_agent_state()` (wired to the
session's state events) and decides per frame:

* line 0 is spoken after a short lead-in;
* a line without `barge_in_after_ms` is spoken once the agent has answered the previous line
  and then stayed `listening` for `settle_ms` (a preamble, a tool call and the follow-up answer
  count as one answer because the agent is not listening in between for that long);
* a line with `barge_in_after_ms` is spoken that many ms after the agent started speaking its
  answer — mid-answer, an interruption;
* after the last line the caller waits for the agent to settle, then hangs up (the stream ends).

If the agent never answers within `answer_timeout_s`, the caller records a problem and hangs up
instead of waiting forever; `problems` tells the command what went wrong.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from vocalis.audio.frame import AudioFrame, Int16Array, ms_to_samples, samples_to_ms
from vocalis.transports.base import AudioSource
from vocalis.utils.clock import Clock, MonotonicClock

# espeak-ng voice for the caller: a different timbre from the sim-server's agent voice.
CALLER_VOICE = "en-us+f3"

Synthesizer = Callable[[str, int], Int16Array]
# (samples, sample rate, clock time of the first sample) for every frame the caller sends.
FrameCallback = Callable[[Int16Array, int, float], None]


def espeak_synthesizer(voice: str = CALLER_VOICE) -> Synthesizer:
    """Real speech from espeak-ng (imported lazily: loading the C library takes a moment)."""

    def speak(text: str, sample_rate: int) -> Int16Array:
        from vocalis.audio.espeak import synthesize

        return synthesize(text, voice=voice, sample_rate=sample_rate).samples

    return speak


@dataclass(frozen=True, slots=True)
class CallerLine:
    """One thing the caller says, and when."""

    text: str
    # Speak this many ms after the agent starts answering the previous line (a barge-in);
    # None = wait politely until the agent finished.
    barge_in_after_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Utterance:
    """What the caller said, on the caller's own audio timeline (ms from the first frame)."""

    text: str
    start_ms: float
    end_ms: float
    barge_in: bool


def _ms(seconds: float) -> float:
    """Seconds to ms, rounded to 1 µs so float noise cannot shift a decision by a frame."""
    return round(seconds * 1000.0, 3)


class _Phase(enum.Enum):
    LEAD_IN = "lead-in"
    SPEAKING = "speaking"
    WAITING = "waiting"
    TAIL = "tail"
    DONE = "done"


@dataclass(slots=True)
class _AgentWatch:
    """Agent states seen since the caller last finished a line (times on the clock)."""

    state: str = "listening"
    state_since: float = 0.0
    first_speaking_at: float | None = None


class SimulatedCaller(AudioSource):
    def __init__(
        self,
        lines: Sequence[CallerLine],
        *,
        synthesize: Synthesizer | None = None,
        clock: Clock | None = None,
        frame_ms: int = 20,
        lead_in_ms: float = 600.0,
        settle_ms: float = 1200.0,
        tail_ms: float = 500.0,
        answer_timeout_s: float = 25.0,
        agent_idle: Callable[[], bool] | None = None,
        on_frame: FrameCallback | None = None,
    ) -> None:
        if not lines:
            raise ValueError("a simulated caller needs at least one line")
        if lines[0].barge_in_after_ms is not None:
            raise ValueError("the first line cannot barge in: there is no answer yet")
        self.lines = tuple(lines)
        self._synthesize = synthesize or espeak_synthesizer()
        self._clock = clock or MonotonicClock()
        self.frame_ms = frame_ms
        self.lead_in_ms = lead_in_ms
        self.settle_ms = settle_ms
        self.tail_ms = tail_ms
        self.answer_timeout_s = answer_timeout_s
        # Extra idle condition from the runtime (e.g. "no response active, nothing queued").
        self._agent_idle = agent_idle
        # Every frame sent, with the clock time of its first sample (the recording's left side).
        self._on_frame = on_frame
        self.utterances: list[Utterance] = []
        self.problems: list[str] = []
        self._watch = _AgentWatch()
        self._consumed = False
        self._phase = _Phase.LEAD_IN
        # Clock time of the first frame: utterance times are relative to it.
        self.origin: float | None = None

    # ------------------------------------------------------------------ agent side
    def on_agent_state(self, state: str) -> None:
        """Feed the agent's state changes (`listening`, `thinking`, `speaking`)."""
        now = self._clock.now()
        if state == self._watch.state:
            return
        self._watch.state = state
        self._watch.state_since = now
        if state == "speaking" and self._watch.first_speaking_at is None:
            self._watch.first_speaking_at = now

    def set_frame_callback(self, on_frame: FrameCallback | None) -> None:
        """Observe every frame sent (e.g. to record the caller's side of the call)."""
        self._on_frame = on_frame

    @property
    def hung_up(self) -> bool:
        return self._phase is _Phase.DONE

    # ------------------------------------------------------------------ decisions
    def _agent_answered(self, now: float) -> bool:
        """The agent spoke since our last line and has been listening for `settle_ms`."""
        watch = self._watch
        if watch.first_speaking_at is None or watch.state != "listening":
            return False
        if _ms(now - watch.state_since) < self.settle_ms:
            return False
        return self._agent_idle() if self._agent_idle is not None else True

    def _barge_in_due(self, line: CallerLine, now: float) -> bool:
        start = self._watch.first_speaking_at
        if start is None or line.barge_in_after_ms is None:
            return False
        return _ms(now - start) >= line.barge_in_after_ms

    # ------------------------------------------------------------------ the stream
    def frames(self, sample_rate: int) -> AsyncIterator[AudioFrame]:
        if self._consumed:
            raise RuntimeError("a SimulatedCaller's audio can be consumed once")
        self._consumed = True
        return self._stream(sample_rate)

    async def _stream(self, sample_rate: int) -> AsyncIterator[AudioFrame]:
        """Real-time frames: each one first decides the phase (`_advance_phase`, the
        turn-taking decision), then takes speech or silence (`_speak`)."""
        step = ms_to_samples(self.frame_ms, sample_rate)
        clock = self._clock
        origin = clock.now()
        self.origin = origin
        pos = _Position(
            clips=[self._synthesize(line.text, sample_rate) for line in self.lines],
            silence=np.zeros(step, dtype=np.int16),
            rate=sample_rate,
            phase_started=origin,
        )
        while True:
            await clock.sleep_until(origin + pos.sent / sample_rate)
            now = clock.now()
            self._advance_phase(now, pos)
            if self._phase is _Phase.DONE:
                return
            frame = self._speak(now, pos, step) if self._phase is _Phase.SPEAKING else pos.silence
            if self._on_frame is not None:
                self._on_frame(frame, sample_rate, origin + pos.sent / sample_rate)
            pos.sent += step
            yield AudioFrame(frame, sample_rate)

    def _advance_phase(self, now: float, pos: _Position) -> None:
        """The turn-taking decision for this frame: start talking, keep waiting, hang up."""
        elapsed_ms = _ms(now - pos.phase_started)
        if self._phase is _Phase.LEAD_IN and elapsed_ms >= self.lead_in_ms:
            self._phase = _Phase.SPEAKING
        elif self._phase is _Phase.WAITING:
            waiting_for = self.lines[pos.next_line] if pos.next_line < len(self.lines) else None
            if waiting_for is not None and self._barge_in_due(waiting_for, now):
                self._phase = _Phase.SPEAKING
            elif self._agent_answered(now):
                if waiting_for is not None and waiting_for.barge_in_after_ms is not None:
                    self.problems.append(
                        f"agent finished its answer before the planned barge-in at "
                        f"{waiting_for.barge_in_after_ms:.0f} ms; spoke after it instead"
                    )
                self._phase = _Phase.SPEAKING if waiting_for is not None else _Phase.TAIL
                pos.phase_started = now
            elif elapsed_ms >= self.answer_timeout_s * 1000.0:
                self.problems.append(
                    f"the agent did not answer {self.lines[pos.next_line - 1].text!r} "
                    f"within {self.answer_timeout_s:.0f} s"
                )
                self._phase = _Phase.TAIL
                pos.phase_started = now
        elif self._phase is _Phase.TAIL and elapsed_ms >= self.tail_ms:
            self._phase = _Phase.DONE

    def _speak(self, now: float, pos: _Position, step: int) -> Int16Array:
        """The next frame of the current line; at its end, record it and start waiting."""
        if pos.clip is None:
            pos.clip = pos.clips[pos.next_line]
            pos.clip_pos = 0
            pos.utterance_start = samples_to_ms(pos.sent, pos.rate)
        chunk = pos.clip[pos.clip_pos : pos.clip_pos + step]
        pos.clip_pos += chunk.shape[0]
        if chunk.shape[0] < step:
            chunk = np.concatenate([chunk, pos.silence[: step - chunk.shape[0]]])
        if pos.clip_pos >= pos.clip.shape[0]:
            line = self.lines[pos.next_line]
            end_ms = samples_to_ms(pos.sent + step, pos.rate)
            barge_in = line.barge_in_after_ms is not None
            self.utterances.append(Utterance(line.text, pos.utterance_start, end_ms, barge_in))
            pos.next_line += 1
            pos.clip = None
            self._phase = _Phase.WAITING
            pos.phase_started = now
            # Only agent activity *after* this line counts as its answer.
            self._watch.first_speaking_at = None
            if self._watch.state == "speaking":
                # Still talking (we barged in and it has not stopped yet): not an answer.
                self._watch.state_since = now
        return chunk


@dataclass(slots=True)
class _Position:
    """Where the caller's stream is: its own audio timeline and the line being spoken."""

    clips: list[Int16Array]
    silence: Int16Array
    rate: int
    phase_started: float
    sent: int = 0  # samples emitted so far: the caller's own audio timeline
    next_line: int = 0
    clip: Int16Array | None = None  # the line being spoken (None between lines)
    clip_pos: int = 0
    utterance_start: float = 0.0


@dataclass(slots=True)
class CallerScript:
    """A caller script as loaded from a scenario or built by a command."""

    lines: list[CallerLine] = field(default_factory=list)

    @classmethod
    def from_data(cls, data: Sequence[object]) -> CallerScript:
        """Accept `["text", {"say": "text", "barge_in_after_ms": 1500}, ...]`."""
        lines: list[CallerLine] = []
        for index, entry in enumerate(data):
            if isinstance(entry, str):
                lines.append(CallerLine(entry))
            elif isinstance(entry, dict) and isinstance(entry.get("say"), str):
                barge = entry.get("barge_in_after_ms")
                if barge is not None and not isinstance(barge, int | float):
                    raise ValueError(f"caller line {index}: barge_in_after_ms must be a number")
                lines.append(CallerLine(entry["say"], None if barge is None else float(barge)))
            else:
                raise ValueError(f"caller line {index}: expected text or {{say: text}}")
        return cls(lines)
