"""The turn-taking core (`runtime/turns.py`), property-tested over random sequences of facts.

Like the heard ledger's tests: the core is pure, so hypothesis drives it through thousands of
interleavings of caller speech, backchannels, commits, responses beginning and settling,
reconnects and re-syncs, and checks the rules after every step:

* no reply the caller asked for is ever swallowed (only the server's reply to a backchannel is
  cancelled);
* a backchannel never becomes a turn, a real turn is added exactly once;
* the history is never re-synced while a response runs, and replies are held before any sync;
* an owed or lost answer is requested at most once, never while the caller speaks or a
  response runs;
* nothing is decided after closing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from vocalis.runtime.turns import (
    AddCallerTurn,
    CancelResponse,
    Closing,
    Committed,
    Decision,
    DeleteItem,
    ExpectReply,
    Fact,
    HistoryUnsynced,
    HoldReplies,
    Reconnected,
    RequestReply,
    ResponseBegan,
    ResponseSettled,
    Resync,
    Resynced,
    ServerReplyRefused,
    SpeechStarted,
    SpeechStopped,
    TurnConfig,
    TurnTaking,
)

STEPS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "speak",
                "stop",
                "backchannel",
                "commit",
                "refused",
                "server_response",
                "requested_response",
                "settle",
                "reconnect",
                "unsynced",
                "resynced",
                "close",
            ]
        ),
        st.booleans(),
        st.booleans(),
    ),
    max_size=24,
)
CONFIGS = st.builds(TurnConfig, local_turns=st.booleans(), server_replies=st.booleans())


@dataclass
class World:
    """The test's own account of what happened, to check each decision against."""

    core: TurnTaking
    speaking: bool = False
    item: int = 0
    pending_items: list[tuple[str, bool]] = field(default_factory=list)  # (id, backchannel)
    in_flight: list[str] = field(default_factory=list)
    responses: int = 0
    # The last thing the caller did: a backchannel stop arms the one cancel we allow.
    armed_for_cancel: bool = False
    added: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    held: bool = False
    closed: bool = False

    def fact_for(self, kind: str, a: bool, b: bool) -> Fact | None:
        if kind == "speak":
            self.item += 1
            return SpeechStarted(f"u{self.item}")
        if kind in ("stop", "backchannel") and self.speaking:
            backchannel = kind == "backchannel"
            item_id = f"u{self.item}"
            self.pending_items.append((item_id, backchannel))
            return SpeechStopped(item_id, backchannel=backchannel)
        if kind == "commit" and self.pending_items:
            item_id, _ = self.pending_items[0]
            return Committed(item_id)
        if kind == "refused":
            return ServerReplyRefused()
        if kind in ("server_response", "requested_response"):
            self.responses += 1
            return ResponseBegan(f"r{self.responses}", requested=kind == "requested_response")
        if kind == "settle" and self.in_flight:
            return ResponseSettled(self.in_flight[0], owes_reply=a, heard_part=b)
        if kind == "reconnect":
            return Reconnected()
        if kind == "unsynced":
            return HistoryUnsynced()
        if kind == "resynced":
            return Resynced(unanswered_turn=a, queue_empty=b)
        if kind == "close":
            return Closing()
        return None


def check(world: World, fact: Fact, decisions: list[Decision]) -> None:
    if world.closed:
        assert decisions == [], "decided after closing"
        return
    running = [
        r
        for r in world.in_flight
        if not (isinstance(fact, ResponseSettled) and r == fact.response_id)
    ]
    speaking = isinstance(fact, SpeechStarted) or (
        world.speaking and not isinstance(fact, SpeechStopped)
    )
    for decision in decisions:
        if isinstance(decision, CancelResponse):
            # Only the server's reply that follows a backchannel, never a requested one.
            assert isinstance(fact, ResponseBegan) and not fact.requested
            assert world.armed_for_cancel, "a reply the caller asked for was swallowed"
        elif isinstance(decision, Resync):
            assert not running, "re-synced while a response runs"
            assert world.held or HoldReplies() in decisions, "re-synced with replies free"
        elif isinstance(decision, RequestReply) and decision.reason != "refused_turn":
            assert isinstance(fact, Resynced)
            assert not speaking and not running and fact.queue_empty
            assert sum(isinstance(d, RequestReply) for d in decisions) == 1
        elif isinstance(decision, ExpectReply) and decision.expected:
            assert not speaking
        elif isinstance(decision, AddCallerTurn):
            assert decision.item_id not in world.added, "a turn added twice"
            assert (decision.item_id, True) not in world.pending_items, "a backchannel added"
        elif isinstance(decision, DeleteItem):
            assert (decision.item_id, True) in world.pending_items, "a real turn deleted"


def advance(world: World, fact: Fact, decisions: list[Decision]) -> None:
    """Update the test's account after the core decided."""
    if isinstance(fact, SpeechStarted):
        world.speaking = True
        world.armed_for_cancel = False
    elif isinstance(fact, SpeechStopped):
        world.speaking = False
        world.armed_for_cancel = fact.backchannel and world.core.config.server_replies
    elif isinstance(fact, Committed):
        world.pending_items = [p for p in world.pending_items if p[0] != fact.item_id]
    elif isinstance(fact, ResponseBegan):
        world.in_flight.append(fact.response_id)
        if not fact.requested:
            world.armed_for_cancel = False
    elif isinstance(fact, ResponseSettled):
        world.in_flight.remove(fact.response_id)
    elif isinstance(fact, ServerReplyRefused):
        world.armed_for_cancel = False
    elif isinstance(fact, Resynced):
        world.held = False
    elif isinstance(fact, Closing):
        world.closed = True
    for decision in decisions:
        if isinstance(decision, AddCallerTurn):
            world.added.append(decision.item_id)
        elif isinstance(decision, DeleteItem):
            world.deleted.append(decision.item_id)
        elif isinstance(decision, HoldReplies):
            world.held = True


@settings(max_examples=800, deadline=None)
@given(config=CONFIGS, steps=STEPS)
def test_turn_taking_rules_hold_over_random_facts(
    config: TurnConfig, steps: list[tuple[str, bool, bool]]
) -> None:
    world = World(TurnTaking(config))
    for kind, a, b in steps:
        fact = world.fact_for(kind, a, b)
        if fact is None:
            continue
        decisions = world.core.decide(fact)
        check(world, fact, decisions)
        advance(world, fact, decisions)


@settings(max_examples=300, deadline=None)
@given(config=CONFIGS, steps=STEPS)
def test_a_real_turn_is_never_swallowed(
    config: TurnConfig, steps: list[tuple[str, bool, bool]]
) -> None:
    """After a caller turn that is no backchannel, the server's next reply always plays."""
    core = TurnTaking(config)
    for kind, _a, _b in steps:
        if kind == "backchannel":
            core.decide(SpeechStarted("b"))
            core.decide(SpeechStopped("b", backchannel=True))
        elif kind == "speak":
            core.decide(SpeechStarted("t"))
            core.decide(SpeechStopped("t"))
            assert CancelResponse("real") not in core.decide(ResponseBegan("real", False))
            core.decide(ResponseSettled("real"))


def test_a_lost_answer_is_asked_for_once_after_the_resync() -> None:
    core = TurnTaking(TurnConfig(local_turns=False, server_replies=True))
    core.decide(ResponseBegan("r1", requested=False))
    assert core.decide(Reconnected()) == [HoldReplies()]  # r1 still plays what arrived
    assert core.decide(ResponseSettled("r1", owes_reply=True, heard_part=True)) == [
        HoldReplies(),
        Resync(),
    ]
    assert core.decide(Resynced(unanswered_turn=False)) == [
        RequestReply("lost_response", continue_heard=True)
    ]
    assert core.decide(Resynced()) == []  # once


def test_a_backchannel_is_deleted_and_its_reply_cancelled() -> None:
    core = TurnTaking(TurnConfig(local_turns=False, server_replies=True))
    core.decide(SpeechStarted("b1"))
    assert core.decide(SpeechStopped("b1", backchannel=True)) == []
    assert core.decide(Committed("b1")) == [DeleteItem("b1")]
    assert core.decide(ResponseBegan("r1", requested=False)) == [CancelResponse("r1")]
    assert core.decide(ResponseBegan("r2", requested=False)) == []
