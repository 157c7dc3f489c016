"""Deciding when caller speech interrupts the agent, and when it was only a backchannel.

Two regimes, because who cancels the response differs (P2, LK PR #3447, S7):

* the provider cancels by itself (server VAD with `interrupt_response=True`): vocalis follows
  at once — clears the sink within the current frame and settles the ledger — but does *not*
  send its own `response.cancel` (that would only earn a "nothing to cancel" error).
  There is no backchannel tolerance here: the generation is already gone on the server, and
  the server commits the "mhm" as a turn and answers it;
* vocalis decides (local VAD, or server VAD with `interrupt_response=False`): speech shorter
  than `min_duration_s` is a backchannel ("mhm", a cough) and never discards the answer.

Speech length is measured on the *audio* (voice onset to voice end, from the VAD's positions),
not between the arrival of the VAD's events: the end of speech is only known a silence window
(`silence_s`: server VAD `silence_duration_ms`, local VAD `min_silence_ms`) after the voice
stopped. So a pending decision is confirmed as an interruption `min_duration_s + silence_s`
after the onset if the speech has not ended by then, or as soon as speech that ended turns out
to be long enough.

While the decision is pending the agent either keeps talking, or — with
`resume_false_interruption` and a sink that can pause — pauses at the onset (a real
interruption then sounds instant and is truncated exactly where the caller heard it stop) and
resumes from the same sample after a backchannel. A backchannel while the agent was speaking
is reported to the session (`speech_stopped()` returns True), which then keeps it out of the
conversation: nothing committed or answered, the audio cleared or the committed item deleted.

Uninterruptible speech (`say(..., allow_interruptions=False)`) is enforced by the session's
callbacks, which refuse to interrupt (or pause) while such speech is playing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from vocalis.runtime.events import InterruptSource
from vocalis.runtime.options import InterruptionOptions
from vocalis.runtime.tasks import TaskOwner
from vocalis.utils.clock import Clock

# interrupt(source, cancel_provider) -> whether anything was interrupted
InterruptFn = Callable[[InterruptSource, bool], bool]


@dataclass(slots=True)
class _Pending:
    """Caller speech over the agent whose fate is not decided yet."""

    source: InterruptSource
    onset_ms: float  # voice onset, ms of the input stream
    over_speech: bool  # the agent was audibly speaking at the onset
    paused: bool  # playback was paused at the onset
    task: asyncio.Task[None] | None = None


class InterruptionController:
    def __init__(
        self,
        options: InterruptionOptions,
        clock: Clock,
        owner: TaskOwner,
        interrupt: InterruptFn,
        *,
        agent_speaking: Callable[[], bool] = lambda: False,
        pause: Callable[[], bool] = lambda: False,
        resume: Callable[[], None] = lambda: None,
    ) -> None:
        self.options = options
        self._clock = clock
        self._owner = owner
        self._interrupt = interrupt
        self._agent_speaking = agent_speaking
        self._pause = pause
        self._resume = resume
        self._pending: _Pending | None = None
        # Speech over the agent shorter than `min_duration_s` (backchannels), and how many of
        # them paused playback and resumed it.
        self.false_interruptions = 0
        self.resumed = 0

    @property
    def pending(self) -> bool:
        return self._pending is not None

    def speech_started(
        self,
        source: InterruptSource,
        *,
        provider_cancels: bool,
        onset_ms: float = 0.0,
        silence_s: float = 0.0,
    ) -> None:
        if not self.options.enabled:
            return
        self._drop_pending()
        if provider_cancels or self.options.min_duration_s <= 0:
            self._interrupt(source, not provider_cancels)
            return
        over_speech = self._agent_speaking()
        paused = over_speech and self.options.resume_false_interruption and self._pause()
        pending = _Pending(source, onset_ms, over_speech, paused)
        self._pending = pending
        wait_s = self.options.min_duration_s + silence_s
        pending.task = self._owner.spawn(
            self._confirm(pending, wait_s), f"interrupt-confirm:{source}"
        )

    def speech_stopped(self, voice_end_ms: float | None = None) -> bool:
        """The caller stopped; True when it was a backchannel over the agent's speech."""
        pending = self._pending
        if pending is None:
            return False
        self._drop_pending()
        voiced_ms = None if voice_end_ms is None else voice_end_ms - pending.onset_ms
        if voiced_ms is not None and voiced_ms >= self.options.min_duration_s * 1000.0:
            # Long enough, but its end arrived before the timer: an interruption after all.
            self._confirmed(pending)
            return False
        if pending.paused:
            self._resume()
            self.resumed += 1
        if pending.over_speech:
            self.false_interruptions += 1
        return pending.over_speech

    def _drop_pending(self) -> None:
        pending, self._pending = self._pending, None
        task = pending.task if pending is not None else None
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()

    async def _confirm(self, pending: _Pending, wait_s: float) -> None:
        await self._clock.sleep(wait_s)
        if self._pending is pending:
            self._pending = None
            self._confirmed(pending)

    def _confirmed(self, pending: _Pending) -> None:
        if not self._interrupt(pending.source, True) and pending.paused:
            self._resume()  # nothing left to interrupt (e.g. it ended meanwhile): play on
