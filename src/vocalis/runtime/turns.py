"""Turn-taking as a pure decision core: facts in, decisions out (no I/O, no clock, no asyncio).

`AgentSession` used to decide who has the floor with a handful of flags spread over its
methods (`_backchannel_items`, `_swallow_reply`, `_resync_needed`, `_check_lost_turn`,
`_reply_owed`, ...). The flags lived in one place here, and every decision is a return value,
so the rules can be property-tested over random sequences of facts
(`tests/runtime/test_turns_properties.py`), the way the heard ledger is.

Facts are what happened: the caller started or stopped speaking (and whether that was a
backchannel, as the interruption controller classified it), the provider committed a caller
turn, refused its own reply because one was running, a response began or settled, the
connection came back, a history re-sync finished. Decisions are what the session must do:
expect a reply, drop tool follow-ups, add or delete a caller item, clear the input buffer,
commit a local turn, cancel an unwanted response, request a reply, re-sync the history.

The rules:

* The caller takes the floor when they start speaking: nothing the agent was about to say on
  its own (a tool follow-up, an owed answer) goes ahead; their turn gets the answer.
* A backchannel over the agent ("mhm") is no turn: its committed item is deleted, a local
  turn's audio is cleared from the input, and a reply the server starts for it is cancelled
  before it plays — only that one: a real turn afterwards is never swallowed.
* A reply the server refused to start (a response was still running) is requested again.
* The provider's conversation is re-synced to the heard history whenever no response runs
  after one settled or after a reconnect — never while a response is in flight.
* After a reconnect (or a response lost with its connection) the caller is answered once:
  for a lost response (continuing what was heard, if anything), or for their last turn
  whose reply never started — only when nothing runs, nothing is queued and the caller is
  not speaking.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

# --------------------------------------------------------------------------- facts


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The caller started speaking (`item_id`: the provider's id for the turn, if it has one)."""

    item_id: str | None = None


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    """The caller stopped; `backchannel`: it was a short sound over the agent, not a turn."""

    item_id: str | None = None
    backchannel: bool = False


@dataclass(frozen=True, slots=True)
class Committed:
    """The provider committed caller audio as a conversation item."""

    item_id: str


@dataclass(frozen=True, slots=True)
class ServerReplyRefused:
    """The provider's own reply to a caller turn was refused: a response was still running."""


@dataclass(frozen=True, slots=True)
class ResponseBegan:
    """A response started; `requested`: vocalis asked for it (else the server's VAD did)."""

    response_id: str
    requested: bool


@dataclass(frozen=True, slots=True)
class ResponseSettled:
    """A response's history is final. `owes_reply`: it died with its connection before it
    finished and no tool follow-up speaks for it; `heard_part`: the caller heard some of it."""

    response_id: str
    owes_reply: bool = False
    heard_part: bool = False


@dataclass(frozen=True, slots=True)
class Reconnected:
    """The provider reconnected (a new provider session, the history replayed)."""


@dataclass(frozen=True, slots=True)
class HistoryUnsynced:
    """The provider lacks something the history holds (e.g. a tool output it rejected)."""


@dataclass(frozen=True, slots=True)
class Resynced:
    """A history re-sync finished. `unanswered_turn`: the last heard item is a caller turn
    the provider can read; `queue_empty`: no reply is queued or being requested."""

    unanswered_turn: bool = False
    queue_empty: bool = True


@dataclass(frozen=True, slots=True)
class Closing:
    """The session is closing: decide nothing new."""


Fact: TypeAlias = (
    SpeechStarted
    | SpeechStopped
    | Committed
    | ServerReplyRefused
    | ResponseBegan
    | ResponseSettled
    | Reconnected
    | HistoryUnsynced
    | Resynced
    | Closing
)

# --------------------------------------------------------------------------- decisions


@dataclass(frozen=True, slots=True)
class ExpectReply:
    """The agent is `thinking` from the end of the caller's turn until a response starts."""

    expected: bool


@dataclass(frozen=True, slots=True)
class DropFollowUps:
    """Tool follow-ups queued or pending go: the caller's turn will see the outputs."""


@dataclass(frozen=True, slots=True)
class AddCallerTurn:
    item_id: str


@dataclass(frozen=True, slots=True)
class DeleteItem:
    """A backchannel the provider committed as a turn leaves its conversation."""

    item_id: str


@dataclass(frozen=True, slots=True)
class ClearInput:
    """Local turns: a backchannel's audio leaves the provider's input buffer."""


@dataclass(frozen=True, slots=True)
class CommitTurn:
    """Local turns: commit the caller's audio and request the reply."""


@dataclass(frozen=True, slots=True)
class CancelResponse:
    """Cancel a response before it plays (the server's reply to a backchannel)."""

    response_id: str


ReplyReason = Literal["refused_turn", "lost_response", "lost_turn"]


@dataclass(frozen=True, slots=True)
class RequestReply:
    """Ask for a reply; `continue_heard`: the caller heard part of a lost answer."""

    reason: ReplyReason
    continue_heard: bool = False


@dataclass(frozen=True, slots=True)
class HoldReplies:
    """A re-sync is due: no reply may reach the provider before it ran (a follow-up must
    not precede its tool output, a lost turn's answer not its history)."""


@dataclass(frozen=True, slots=True)
class Resync:
    """Make the provider's conversation equal the heard history, now (nothing runs)."""


Decision: TypeAlias = (
    ExpectReply
    | DropFollowUps
    | AddCallerTurn
    | DeleteItem
    | ClearInput
    | CommitTurn
    | CancelResponse
    | RequestReply
    | HoldReplies
    | Resync
)

# --------------------------------------------------------------------------- the core


@dataclass(frozen=True, slots=True)
class TurnConfig:
    """How turns are taken. `local_turns`: vocalis detects them (commits and replies itself);
    `server_replies`: the provider answers a turn on its own (server VAD `create_response`)."""

    local_turns: bool
    server_replies: bool

    @property
    def answers_turns(self) -> bool:
        return self.local_turns or self.server_replies


@dataclass(slots=True)
class TurnTaking:
    """The state of turn-taking between caller, agent and provider; `decide` is the only way in."""

    config: TurnConfig
    caller_speaking: bool = False
    in_flight: set[str] = field(default_factory=set)
    # Committed items of backchannels, to delete instead of adding as turns.
    backchannels: set[str] = field(default_factory=set)
    # The server will answer the last backchannel: cancel that reply before it plays.
    swallow_next_reply: bool = False
    resync_due: bool = False
    # After a reconnect: answer the caller's last turn if its reply never started.
    check_lost_turn: bool = False
    # A response lost with its connection (None: none owed).
    reply_owed: ResponseSettled | None = None
    closing: bool = False

    def decide(self, fact: Fact) -> list[Decision]:
        if self.closing:
            return []
        handler = _HANDLERS[type(fact)]
        return handler(self, fact)

    # ------------------------------------------------------------------ caller

    def _speech_started(self, fact: SpeechStarted) -> list[Decision]:
        self.caller_speaking = True
        self.swallow_next_reply = False
        self.reply_owed = None  # the caller's new turn gets the answer
        return [ExpectReply(False), DropFollowUps()]

    def _speech_stopped(self, fact: SpeechStopped) -> list[Decision]:
        self.caller_speaking = False
        if fact.backchannel:
            if fact.item_id is not None:
                self.backchannels.add(fact.item_id)
            self.swallow_next_reply = self.config.server_replies
            return [ClearInput()] if self.config.local_turns else []
        decisions: list[Decision] = []
        if self.config.server_replies:
            decisions.append(ExpectReply(True))
        if self.config.local_turns:
            decisions.append(CommitTurn())
        return decisions

    def _committed(self, fact: Committed) -> list[Decision]:
        if fact.item_id in self.backchannels:
            self.backchannels.discard(fact.item_id)
            return [DeleteItem(fact.item_id)]
        return [AddCallerTurn(fact.item_id)]

    def _server_reply_refused(self, fact: ServerReplyRefused) -> list[Decision]:
        if self.swallow_next_reply:
            self.swallow_next_reply = False  # the refused reply was to a backchannel
            return []
        return [RequestReply("refused_turn")] if self.config.server_replies else []

    # ------------------------------------------------------------------ responses

    def _response_began(self, fact: ResponseBegan) -> list[Decision]:
        self.in_flight.add(fact.response_id)
        if not fact.requested and self.swallow_next_reply:
            self.swallow_next_reply = False
            return [CancelResponse(fact.response_id)]
        return []

    def _response_settled(self, fact: ResponseSettled) -> list[Decision]:
        self.in_flight.discard(fact.response_id)
        if fact.owes_reply:
            self.reply_owed = fact
        if self.in_flight:
            return []
        return self._resync_due()  # checkpoint: the provider holds what was heard

    def _reconnected(self, fact: Reconnected) -> list[Decision]:
        self.check_lost_turn = True
        return self._resync_due()

    def _history_unsynced(self, fact: HistoryUnsynced) -> list[Decision]:
        return self._resync_due()

    def _resync_due(self) -> list[Decision]:
        """Replies wait from now on; the sync itself runs once no response is in flight."""
        self.resync_due = True
        if self.in_flight:
            return [HoldReplies()]
        self.resync_due = False
        return [HoldReplies(), Resync()]

    def _resynced(self, fact: Resynced) -> list[Decision]:
        owed, self.reply_owed = self.reply_owed, None
        check, self.check_lost_turn = self.check_lost_turn, False
        if self.in_flight or not fact.queue_empty or self.caller_speaking:
            return []
        if owed is not None:
            return [RequestReply("lost_response", continue_heard=owed.heard_part)]
        if check and self.config.answers_turns and fact.unanswered_turn:
            return [RequestReply("lost_turn")]
        return []

    def _closing(self, fact: Closing) -> list[Decision]:
        self.closing = True
        return []


_Handler: TypeAlias = Callable[[TurnTaking, Any], list[Decision]]
_HANDLERS: dict[type, _Handler] = {
    SpeechStarted: TurnTaking._speech_started,
    SpeechStopped: TurnTaking._speech_stopped,
    Committed: TurnTaking._committed,
    ServerReplyRefused: TurnTaking._server_reply_refused,
    ResponseBegan: TurnTaking._response_began,
    ResponseSettled: TurnTaking._response_settled,
    Reconnected: TurnTaking._reconnected,
    HistoryUnsynced: TurnTaking._history_unsynced,
    Resynced: TurnTaking._resynced,
    Closing: TurnTaking._closing,
}
