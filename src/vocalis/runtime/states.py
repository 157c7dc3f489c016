"""Agent and user states, derived from facts instead of set ad hoc.

The bug class this avoids is the agent stuck in `speaking` or `thinking` (P15, P18): states set
by scattered code paths drift from reality when one path forgets to reset them. Here the
runtime reports *facts* — a response started, its first frame played, its playout ended, a
follow-up is pending, the caller spoke — and the agent state is recomputed from them:

* `speaking` while any response is in its playout window (from its first *played* frame until
  its last segment ended) — so it starts once per response, not once per message;
* `thinking` while a reply is expected but nothing plays yet: from the end of the caller's
  speech (when the provider will answer), a requested reply, a running response with nothing
  played yet, or a follow-up owed for a tool call;
* `listening` otherwise.

A follow-up is owed from the moment a response's tool call *arrives* (inside the provider's
receive step, before that response can end) until the follow-up reply is in the scheduler's
queue — which then keeps the agent `thinking` itself — or nobody waits for it any more (the
caller took the floor, the session closes). Owing it from the call on, not from when the
tool's output is sent, is what keeps the state from flickering to `listening` between the end
of the calling response's playout and the follow-up request: the caller is not expected to
speak there (heard contract 6: the state changes once per response). A failed or dropped
follow-up leaves the queue, so the state still ends in `listening`: nothing hangs.

Facts in, one derived state out, no I/O: `tests/runtime/test_states_properties.py` checks it
over random fact sequences.
"""

from __future__ import annotations

from collections.abc import Callable

from vocalis.runtime.events import AgentState, AgentStateChanged, UserState, UserStateChanged
from vocalis.utils.clock import Clock


class StateTracker:
    def __init__(
        self,
        clock: Clock,
        on_agent: Callable[[AgentStateChanged], None],
        on_user: Callable[[UserStateChanged], None],
    ) -> None:
        self._clock = clock
        self._on_agent = on_agent
        self._on_user = on_user
        self.agent: AgentState = "initializing"
        self.user: UserState = "listening"
        # Facts.
        self._speaking: set[str] = set()  # response ids in their playout window
        self._awaiting: set[str] = set()  # response ids running, nothing played yet
        self._expect_reply = False  # caller finished a turn the provider will answer
        self._replies_pending = 0  # the scheduler's queue plus the request in flight
        self._owed: set[str] = set()  # response ids whose tool follow-up is owed
        self._started = False
        self._closed = False
        # Agent state sequence (for tests and reports).
        self.history: list[AgentState] = []

    # -- facts ------------------------------------------------------------------------

    def start(self) -> None:
        self._started = True
        self._update()

    def close(self) -> None:
        self._closed = True
        self._update()

    def response_started(self, response_id: str) -> None:
        self._expect_reply = False
        self._awaiting.add(response_id)
        self._update()

    def first_frame_played(self, response_id: str) -> None:
        self._awaiting.discard(response_id)
        self._speaking.add(response_id)
        self._update()

    def playout_ended(self, response_id: str) -> None:
        self._awaiting.discard(response_id)
        self._speaking.discard(response_id)
        self._update()

    def interrupted(self) -> None:
        """Barge-in: nothing plays any more; the caller has the floor. (Each cut response
        settles its own owed follow-up; one still requested for the cut tools makes the agent
        `thinking` again once it is queued.)"""
        self._speaking.clear()
        self._awaiting.clear()
        self._expect_reply = False
        self._update()

    def expect_reply(self, expected: bool) -> None:
        self._expect_reply = expected
        self._update()

    def replies_pending(self, count: int) -> None:
        """Replies queued or being requested (the scheduler's count, told on every change)."""
        self._replies_pending = count
        self._update()

    def follow_up_owed(self, response_id: str) -> None:
        """A tool call of `response_id` arrived: the caller will hear about it in a follow-up."""
        self._owed.add(response_id)
        self._update()

    def follow_up_settled(self, response_id: str) -> None:
        """The owed follow-up is queued (`replies_pending` counts it from now on), or nobody
        waits for it any more (dropped, not wanted, the response's run ended)."""
        self._owed.discard(response_id)
        self._update()

    def set_user(self, state: UserState) -> None:
        if state == self.user:
            return
        old, self.user = self.user, state
        self._on_user(UserStateChanged(old, state, self._clock.now()))

    # -- derivation -------------------------------------------------------------------

    def _derive(self) -> AgentState:
        if self._closed:
            return "closed"
        if not self._started:
            return "initializing"
        if self._speaking:
            return "speaking"
        if self._awaiting or self._expect_reply or self._replies_pending or self._owed:
            return "thinking"
        return "listening"

    def _update(self) -> None:
        new = self._derive()
        if new == self.agent:
            return
        old, self.agent = self.agent, new
        self.history.append(new)
        self._on_agent(AgentStateChanged(old, new, self._clock.now()))
