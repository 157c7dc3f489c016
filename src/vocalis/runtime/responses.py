"""The session's responses: every provider response becomes one `ResponseRun`.

A response starts either for one of our requests (the scheduler hands over the request's
handle and timing) or on the provider's own initiative (server VAD answering a caller turn).
Either way the turn-taking core hears of it first — it may decide that a reply to a
backchannel must not play — and hears again when the run settled (a checkpoint re-sync, an
answer owed after a lost connection). Observers (`AgentSession.on_response`) see each run as it
starts.

The table is bounded (`CallBudget.max_open_responses`): the provider decides how many
responses it starts, and each one holds its run until it has played and settled. A response
past the bound gets no run; the session is told once (`on_over_bound`) and ends the call.
"""

from __future__ import annotations

from collections.abc import Callable

from vocalis.conversation.items import MessageItem
from vocalis.providers.base import Generation
from vocalis.runtime.budget import DEFAULT_BUDGET
from vocalis.runtime.observe import ResponseView
from vocalis.runtime.response import ResponseRun, RunContext
from vocalis.runtime.scheduler import ReplyRequest
from vocalis.runtime.speech import SpeechHandle
from vocalis.runtime.turn_driver import TurnDriver
from vocalis.runtime.turns import CancelResponse, ResponseBegan, ResponseSettled

# The error code of a call ended by `CallBudget.max_open_responses`.
RESPONSE_BUDGET_CODE = "response_budget"


class ResponseTable:
    """Responses started and not yet settled, in start order."""

    def __init__(
        self,
        *,
        on_over_bound: Callable[[int], None],
        max_open: int = DEFAULT_BUDGET.max_open_responses,
    ) -> None:
        self.runs: dict[str, ResponseRun] = {}
        self.max_open = max_open
        self._on_over_bound = on_over_bound
        self._over_bound = False
        self._watchers: list[Callable[[ResponseRun], None]] = []
        self._ctx: RunContext | None = None
        self._turns: TurnDriver | None = None

    def bind(self, ctx: RunContext, turns: TurnDriver) -> None:
        """Set once the provider is connected (`AgentSession.start`)."""
        self._ctx = ctx
        self._turns = turns

    def watch(self, callback: Callable[[ResponseRun], None]) -> Callable[[], None]:
        self._watchers.append(callback)
        return lambda: self._watchers.remove(callback)

    def views(self) -> tuple[ResponseView, ...]:
        return tuple(
            ResponseView(r.response_id, r.handle.kind, r.phase, r.stop, r.interrupt_source)
            for r in self.runs.values()
        )

    def on_generation(self, generation: Generation) -> None:
        """The provider started a response (ours or its own)."""
        if self._ctx is None or generation.response_id in self.runs or self._over_bound:
            return
        if len(self.runs) >= self.max_open:
            self._over_bound = True  # no run for it, nor for any later one: the call ends
            self._on_over_bound(self.max_open)
            return
        scheduler = self._ctx.scheduler
        scheduler.track(generation)
        ours = generation.request_id is not None and scheduler.inflight is not None
        # Ours runs with the request's options, started here rather than when the scheduler's
        # task resumes from its request (one event-loop turn later): the first message and
        # its audio may be queued already, and go to the sink now (the first-audio path).
        self.start(generation, scheduler.inflight if ours else None)

    def start(self, generation: Generation, request: ReplyRequest | None) -> None:
        ctx, turns = self._ctx, self._turns
        if ctx is None or turns is None or generation.response_id in self.runs:
            return
        if request is not None and request.handle.response_id == generation.response_id:
            return  # started already, as the provider announced it (`on_generation`)
        if ctx.owner.closed:
            # The session is closing (a reply's response.created crossed the close): the run
            # could never play, and the owner refuses its task. Nothing of it was heard.
            if request is not None:
                request.handle._finish(interrupted=True)
            return
        if request is None:
            handle = SpeechHandle("server")
            speech_end, turns.speech_end_at = turns.speech_end_at, None
            requested_at = None
        else:
            handle = request.handle
            speech_end = request.user_speech_end_at
            requested_at = request.queued_at
        decisions = turns.tell(ResponseBegan(generation.response_id, requested=request is not None))
        if CancelResponse(generation.response_id) in decisions:
            # The server answers a backchannel: cancelled before a frame plays; the ledger
            # deletes its items (never heard).
            handle.interrupted = True
        run = ResponseRun(
            ctx,
            generation,
            handle=handle,
            order_key=ctx.history.next_key(),
            user_speech_end_at=speech_end,
            requested_at=requested_at,
        )
        self.runs[generation.response_id] = run
        for watcher in list(self._watchers):
            watcher(run)
        ctx.owner.spawn(run.run(), f"response:{generation.response_id}")

    def settled(self, run: ResponseRun) -> None:
        self.runs.pop(run.response_id, None)
        if self._turns is None:
            return
        heard = any(isinstance(i, MessageItem) and i.text for i in run.handle.items)
        # The core re-syncs once nothing runs (a checkpoint: the provider replays exactly the
        # heard history after a reconnect; normally an empty diff) and owes a lost answer.
        self._turns.tell(
            ResponseSettled(run.response_id, owes_reply=run.owes_reply, heard_part=heard)
        )
