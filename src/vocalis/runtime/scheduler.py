"""One active response at a time.

Realtime APIs refuse a new response while one is in progress (`ErrorKind.BUSY`; OpenAI's
`response.create` during a response, P22) — and a tool follow-up sent while a
preamble still plays cuts the preamble off (P19). So every client-initiated reply goes through
this queue: `generate_reply`, `say` and tool follow-ups wait until no response is active on the
provider (its `response.done` — which is also the acknowledgement of a cancel — arrived) and
nothing is being requested. Server-initiated responses (server VAD) are tracked too, so a
queued request never races them; if one still slips in between (the server created a response
at the same moment), the rejected request goes back to the head of the queue and is retried
after the next response ends. A request lost to a dropped connection is retried the same way
(the provider waits for its new connection).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from vocalis.providers.base import ErrorKind, Generation, OperationError, RealtimeSession
from vocalis.runtime.speech import SpeechHandle, SpeechKind
from vocalis.runtime.tasks import wait_for
from vocalis.utils.clock import Clock
from vocalis.utils.flag import Flag

log = logging.getLogger(__name__)

# Rejections that are retried instead of reported: BUSY — a response was running (retry when
# it ended); DISCONNECTED — the socket died before the provider answered: nothing of it can
# have been heard, and the provider reconnects by itself, so the request is sent again on the
# new connection (a `say()` or a tool follow-up is not silently lost to a network blip).
RETRIED_KINDS = frozenset({ErrorKind.BUSY, ErrorKind.DISCONNECTED})


@dataclass(slots=True)
class ReplyRequest:
    kind: SpeechKind
    handle: SpeechHandle
    instructions: str | None = None
    tool_choice: str | None = None
    queued_at: float = 0.0
    # For replies to a caller turn detected locally: when the caller stopped (metrics).
    user_speech_end_at: float | None = None
    # Called before the request is sent; returning False drops it (e.g. a follow-up whose
    # turn was interrupted meanwhile).
    still_wanted: Callable[[], bool] | None = None
    attempts: int = field(default=0)


class ReplyScheduler:
    def __init__(
        self,
        provider: RealtimeSession,
        clock: Clock,
        *,
        start_run: Callable[[Generation, ReplyRequest], None],
        on_error: Callable[[ReplyRequest, OperationError], None],
        on_queue_changed: Callable[[int], None],
        retry_delay: float = 0.25,
        max_attempts: int = 20,
    ) -> None:
        self._provider = provider
        self._clock = clock
        self._start_run = start_run
        self._on_error = on_error
        self._on_queue_changed = on_queue_changed
        self._retry_delay = retry_delay
        self._max_attempts = max_attempts
        # A few requests at most: a list (56 B) rather than a deque (760 B) per session (#17).
        self._queue: list[ReplyRequest] = []
        self._active: dict[str, Generation] = {}
        self.inflight: ReplyRequest | None = None
        self._holds: set[str] = set()
        self._wake = Flag()

    # ------------------------------------------------------------------ state

    @property
    def active(self) -> bool:
        """A response is running on the provider, or one is being requested."""
        return bool(self._active) or self.inflight is not None

    @property
    def queued(self) -> int:
        """Requests waiting for their turn (not counting one being requested now)."""
        return len(self._queue)

    @property
    def pending(self) -> int:
        return len(self._queue) + (1 if self.inflight is not None else 0)

    def track(self, generation: Generation) -> None:
        """Count `generation` as active until its `done` (response.done / cancel ack)."""
        rid = generation.response_id
        if rid in self._active or generation.done.done():
            return
        self._active[rid] = generation
        generation.done.add_done_callback(lambda _f: self.release(rid))

    def release(self, response_id: str) -> None:
        """The response ended (or the watchdog gave up waiting for its end)."""
        if self._active.pop(response_id, None) is not None:
            self._wake_if_queued()

    # ------------------------------------------------------------------ queue

    def enqueue(self, request: ReplyRequest) -> None:
        request.queued_at = self._clock.now()
        self._queue.append(request)
        self._changed()
        self._wake.set()

    def drop_queued(self, predicate: Callable[[ReplyRequest], bool]) -> list[ReplyRequest]:
        dropped: list[ReplyRequest] = []
        kept: list[ReplyRequest] = []
        for request in self._queue:
            (dropped if predicate(request) else kept).append(request)
        if dropped:
            self._queue = kept
            self._changed()
        return dropped

    def hold(self, reason: str) -> None:
        """Send nothing until `release_hold(reason)` (e.g. the history is being re-synced: a
        reply must not reach the provider before the items it is about)."""
        self._holds.add(reason)

    def release_hold(self, reason: str) -> None:
        self._holds.discard(reason)
        self._wake_if_queued()

    @property
    def held(self) -> bool:
        return bool(self._holds)

    def wake(self) -> None:
        """Retry a deferred request now (e.g. the provider has reconnected)."""
        self._wake.set()

    def _wake_if_queued(self) -> None:
        """Wake the loop for a request it may send now. Not for an empty queue: the loop
        would only find nothing to do, a task wake-up per response end and per re-sync at
        every response boundary (#17); `enqueue` wakes it when a request comes."""
        if self._queue:
            self._wake.set()

    def _changed(self) -> None:
        self._on_queue_changed(self.pending)

    # ------------------------------------------------------------------ loop

    async def run(self) -> None:
        retry = False
        while True:
            if retry:
                # Rejected because a response was active: retry when one ends, or shortly.
                await wait_for(self._wake.wait(), self._clock, self._retry_delay)
            else:
                await self._wake.wait()
            self._wake.clear()
            retry = False
            while self._queue and not self.active and not self._holds:
                request = self._queue.pop(0)
                if request.still_wanted is not None and not request.still_wanted():
                    request.handle._finish(interrupted=True)
                    self._changed()
                    continue
                if await self._send(request):
                    retry = True
                    break

    async def _send(self, request: ReplyRequest) -> bool:
        """Request one response; True when it must be retried later."""
        self.inflight = request
        self._changed()
        try:
            generation = await self._provider.generate_reply(
                instructions=request.instructions, tool_choice=request.tool_choice
            )
        except OperationError as exc:
            self.inflight = None
            request.attempts += 1
            if exc.kind in RETRIED_KINDS and request.attempts < self._max_attempts:
                # A server-initiated response won the race (retry after it, or shortly), or
                # the connection dropped (retried once the provider is connected again).
                log.info("reply deferred: %s", exc.message)
                self._queue.insert(0, request)
                self._changed()
                return True
            self._changed()
            self._on_error(request, exc)
            request.handle._finish(error=exc)
            return False
        self.inflight = None
        if _cancel_crossed():
            # The session closed as the provider answered, and the cancel lost the race (on
            # Python 3.11 `asyncio.wait_for` returns a result that came with the cancel): the
            # response never plays, and this task must still end, or the close waits forever.
            request.handle._finish(interrupted=True)
            raise asyncio.CancelledError
        self.track(generation)
        # Start the run before reporting the queue change, so the agent state goes straight
        # from "request pending" to "response running" (no false "listening" in between).
        self._start_run(generation, request)
        self._changed()
        return False


def _cancel_crossed() -> bool:
    """The current task was cancelled, but the cancel was swallowed on its way up."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
