"""Agent and user states, derived from facts instead of set ad hoc.

The bug class this avoids is the agent stuck in `speaking` or `thinking` (P15, P18): states set
by scattered code paths drift from reality when one path forgets to reset them. Here the
runtime reports *facts* — a response started, its first frame played, its playout ended, a
follow-up is pending, the caller spoke — and the agent state is recomputed from them:

* `speaking` while any response is in its playout window (from its first *played* frame until
  its last segment ended) — so it starts once per response, not once per message;
* `thinking` while a reply is expected but nothing plays yet: from the end of the caller's
  speech (when the provider will answer), a requested reply, a running response with nothing
  played yet, or tool results waiting for their follow-up;
* `listening` otherwise.
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
        self._busy: set[str] = set()  # tokens: queued replies, tools awaiting a follow-up
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
        """Barge-in: nothing plays any more; the caller has the floor."""
        self._speaking.clear()
        self._awaiting.clear()
        self._expect_reply = False
        self._update()

    def expect_reply(self, expected: bool) -> None:
        self._expect_reply = expected
        self._update()

    def set_busy(self, token: str, busy: bool) -> None:
        """Work the caller waits on (a queued reply, tools before their follow-up)."""
        if busy:
            self._busy.add(token)
        else:
            self._busy.discard(token)
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
        if self._awaiting or self._expect_reply or self._busy:
            return "thinking"
        return "listening"

    def _update(self) -> None:
        new = self._derive()
        if new == self.agent:
            return
        old, self.agent = self.agent, new
        self.history.append(new)
        self._on_agent(AgentStateChanged(old, new, self._clock.now()))
