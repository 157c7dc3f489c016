"""The agent-state core (`runtime/states.py`), property-tested over random sequences of facts.

A small world plays the runtime's side: the caller stops and starts speaking (and barges in),
the app queues replies, the scheduler sends them (or they fail), responses start, call tools,
play and end, and a finished tool round queues its follow-up. Each of its steps tells the
tracker the facts in the order the runtime does. After every step:

* no `listening` while a follow-up is owed or a reply is pending (the caller is not expected
  to speak between a tool result and the follow-up: heard contract 6);
* the agent never goes `listening → thinking` on the runtime's own account (a call arriving,
  a playout ending, a follow-up being queued or sent) — only the caller or the app make it
  think again; so a tool round is `thinking → speaking → thinking → speaking → listening`;
* a barge-in gives the caller the floor at once: `listening` unless a reply is queued or an
  earlier response's follow-up is still owed;

and once everything has run its course (every response ended, every follow-up queued and
sent, or failed) the agent is `listening`: nothing hangs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from session_harness_support import TOOL_ROUND_STATES
from vocalis.runtime.events import AgentState, AgentStateChanged
from vocalis.runtime.states import StateTracker
from vocalis.utils.clock import ManualClock

# Facts the caller or the app cause: the only ones allowed to wake the agent from listening.
OUTSIDE = frozenset({"caller_stops", "app_reply", "server_response"})

STEPS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "caller_stops",
                "caller_starts",
                "barge_in",
                "app_reply",
                "server_response",
                "send",
                "send_fails",
                "call",
                "first_frame",
                "playout_ends",
                "tools_done",
            ]
        ),
        st.integers(min_value=0, max_value=3),
    ),
    max_size=30,
)


@dataclass
class Run:
    """One response as the runtime sees it."""

    rid: str
    playing: bool = True  # in its playout window (or before it)
    spoke: bool = False
    calls: int = 0
    interrupted: bool = False
    cancelled: bool = False  # the caller took the floor after playout
    answered: bool = False  # its tool round finished (follow-up queued or not)

    @property
    def owes(self) -> bool:
        return self.calls > 0 and not self.interrupted and not self.cancelled and not self.answered


@dataclass
class World:
    tracker: StateTracker
    changes: list[AgentStateChanged]
    runs: list[Run] = field(default_factory=list)
    queue: list[str] = field(default_factory=list)  # kinds: "reply" | "tool_followup"
    made: int = 0
    barged: bool = False  # the last step cut something

    # ------------------------------------------------------------------ the runtime's side

    def step(self, kind: str, pick: int) -> None:
        self.barged = False
        getattr(self, kind)(pick)

    def _pick(self, pick: int, *, where: str) -> Run | None:
        found = [r for r in self.runs if getattr(self, where)(r)]
        return found[pick % len(found)] if found else None

    @staticmethod
    def _live(run: Run) -> bool:
        return run.playing and not run.interrupted

    @staticmethod
    def _finished(run: Run) -> bool:
        return not run.playing and not run.answered

    def _start(self) -> None:
        self.made += 1
        run = Run(f"resp_{self.made}")
        self.runs.append(run)
        self.tracker.response_started(run.rid)

    def caller_stops(self, _pick: int) -> None:
        self.tracker.expect_reply(True)

    def caller_starts(self, _pick: int) -> None:
        # ExpectReply(False), DropFollowUps: finished runs' follow-ups and queued ones go.
        self.tracker.expect_reply(False)
        for run in self.runs:
            if not run.playing and not run.answered:
                run.cancelled = True
                self.tracker.follow_up_settled(run.rid)
        self.queue = [k for k in self.queue if k != "tool_followup"]
        self.tracker.replies_pending(len(self.queue))

    def barge_in(self, _pick: int) -> None:
        targets = [r for r in self.runs if self._live(r)]
        if not targets:
            return
        for run in targets:
            run.interrupted = True
            self.tracker.follow_up_settled(run.rid)
        self.tracker.interrupted()
        self.barged = True

    def app_reply(self, _pick: int) -> None:
        self.queue.append("reply")
        self.tracker.replies_pending(len(self.queue))

    def server_response(self, _pick: int) -> None:
        self._start()

    def send(self, _pick: int) -> None:
        if not self.queue:
            return
        self.queue.pop(0)
        self._start()  # the run starts before the queue change is reported
        self.tracker.replies_pending(len(self.queue))

    def send_fails(self, _pick: int) -> None:
        if self.queue:
            self.queue.pop(0)
            self.tracker.replies_pending(len(self.queue))

    def call(self, pick: int) -> None:
        run = self._pick(pick, where="_generating")
        if run is None:
            return
        run.calls += 1
        if not run.interrupted and not run.cancelled:
            self.tracker.follow_up_owed(run.rid)

    @staticmethod
    def _generating(run: Run) -> bool:
        return run.playing

    def first_frame(self, pick: int) -> None:
        run = self._pick(pick, where="_live")
        if run is not None and not run.spoke:
            run.spoke = True
            self.tracker.first_frame_played(run.rid)

    def playout_ends(self, pick: int) -> None:
        run = self._pick(pick, where="_generating")
        if run is not None:
            run.playing = False
            self.tracker.playout_ended(run.rid)

    def tools_done(self, pick: int) -> None:
        """The run's outputs are sent: it queues its follow-up (if wanted), then settles."""
        run = self._pick(pick, where="_finished")
        if run is None:
            return
        if run.calls and not run.cancelled and not run.interrupted:
            self.queue.append("tool_followup")
            self.tracker.replies_pending(len(self.queue))
        run.answered = True
        self.tracker.follow_up_settled(run.rid)

    def drain(self, *, fail: bool) -> None:
        """Everything runs its course; sends fail with `fail`."""
        for _ in range(200):
            if any(r.playing for r in self.runs):
                self.playout_ends(0)
            elif any(self._finished(r) for r in self.runs):
                self.tools_done(0)
            elif self.queue:
                (self.send_fails if fail else self.send)(0)
            else:
                return
        raise AssertionError("the world did not drain")

    # ------------------------------------------------------------------ what the state must be

    @property
    def owed(self) -> bool:
        return any(r.owes for r in self.runs)


def _world() -> World:
    changes: list[AgentStateChanged] = []
    tracker = StateTracker(ManualClock(), changes.append, lambda _e: None)
    tracker.start()
    return World(tracker, changes)


def _check_step(world: World, kind: str, before: AgentState) -> None:
    state = world.tracker.agent
    if world.owed or world.queue:
        assert state != "listening", f"listening with a follow-up owed / reply pending ({kind})"
    if before == "listening" and state == "thinking":
        assert kind in OUTSIDE, f"the agent woke up on its own account: {kind}"
    if world.barged and not world.queue and not world.owed:
        assert state == "listening"


@settings(max_examples=600, deadline=None)
@given(steps=STEPS, fail=st.booleans())
def test_the_agent_state_follows_the_floor_and_always_settles(
    steps: list[tuple[str, int]], fail: bool
) -> None:
    world = _world()
    for kind, pick in steps:
        before = world.tracker.agent
        world.step(kind, pick)
        _check_step(world, kind, before)
    world.tracker.expect_reply(False)  # the expect-reply timer expires at the latest
    world.drain(fail=fail)
    assert world.tracker.agent == "listening"
    assert not world.owed
    # Each change is a real change.
    assert all(c.old != c.new for c in world.changes)


def test_a_tool_round_changes_state_once_per_response() -> None:
    world = _world()
    for kind in (
        "caller_stops",
        "server_response",
        "call",
        "first_frame",
        "playout_ends",
        "tools_done",
        "send",
        "first_frame",
        "playout_ends",
        "tools_done",
    ):
        world.step(kind, 0)
    assert [c.new for c in world.changes] == TOOL_ROUND_STATES


def test_a_failed_follow_up_still_ends_in_listening() -> None:
    world = _world()
    for kind in ("app_reply", "send", "call", "playout_ends", "tools_done", "send_fails"):
        world.step(kind, 0)
    assert [c.new for c in world.changes] == ["listening", "thinking", "listening"]
