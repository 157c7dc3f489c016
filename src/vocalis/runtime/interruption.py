"""Deciding when caller speech interrupts the agent.

Two regimes, because who cancels the response differs (P2, LK PR #3447, S7):

* the provider cancels by itself (server VAD with `interrupt_response=True`): vocalis follows
  at once — clears the sink within the current frame and settles the ledger — but does *not*
  send its own `response.cancel` (that would only earn a `response_cancel_not_active` error);
* vocalis decides (local VAD, or server VAD with `interrupt_response=False`): speech must last
  `min_duration_s` before the agent stops (so "mhm" or a cough does not discard the answer —
  the agent simply keeps talking), then vocalis clears the sink and cancels the response.

Uninterruptible speech (`say(..., allow_interruptions=False)`) is enforced by the session's
interrupt callback, which refuses while such speech is playing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from vocalis.runtime.options import InterruptionOptions
from vocalis.runtime.tasks import TaskOwner
from vocalis.utils.clock import Clock

# interrupt(source, cancel_provider) -> whether anything was interrupted
InterruptFn = Callable[[str, bool], bool]


class InterruptionController:
    def __init__(
        self,
        options: InterruptionOptions,
        clock: Clock,
        owner: TaskOwner,
        interrupt: InterruptFn,
    ) -> None:
        self.options = options
        self._clock = clock
        self._owner = owner
        self._interrupt = interrupt
        self._pending: asyncio.Task[None] | None = None
        # Speech that ended before `min_duration_s` while the agent was talking.
        self.false_interruptions = 0

    def speech_started(self, source: str, *, provider_cancels: bool) -> None:
        if not self.options.enabled:
            return
        if provider_cancels:
            self._interrupt(source, False)
            return
        if self.options.min_duration_s <= 0:
            self._interrupt(source, True)
            return
        self._cancel_pending()
        self._pending = self._owner.spawn(self._confirm(source), f"interrupt-confirm:{source}")

    def speech_stopped(self) -> None:
        if self._pending is not None and not self._pending.done():
            self.false_interruptions += 1
        self._cancel_pending()

    def _cancel_pending(self) -> None:
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()
        self._pending = None

    async def _confirm(self, source: str) -> None:
        await self._clock.sleep(self.options.min_duration_s)
        self._pending = None
        self._interrupt(source, True)
