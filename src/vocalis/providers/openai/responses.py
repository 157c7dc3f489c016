"""Which responses are running and which output items they announced (one provider session).

Why a module of its own: this is the state that grows with what the provider announces — a
running response per `response.created`, an entry per output item, an `ItemAccount` per
message — while `assembly.py` turns events into value events. Every entry is made here
(`start`, `announce`), so the per-call item bound has one place to hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from vocalis.providers.base import ItemAccount, MessageStatus, Modality
from vocalis.providers.core_events import ItemAnnounced, MessageStarted, ResponseStarted
from vocalis.providers.item_bound import ItemBound
from vocalis.providers.openai.calls import PendingCall
from vocalis.providers.openai.wire import WireItem, optional_str
from vocalis.utils.logsafe import WarnLimiter


@dataclass(slots=True)
class Message:
    """A message item of a running response: its streams and its account."""

    item_id: str
    modalities: tuple[Modality, ...]
    account: ItemAccount
    audio_open: bool = True
    text_open: bool = True
    # The item's own end status when it stopped early; the response's end says why.
    stopped: MessageStatus | None = None


@dataclass(slots=True)
class RunningResponse:
    response_id: str
    audio_out: bool
    announced: list[str] = field(default_factory=list)
    messages: dict[str, Message] = field(default_factory=dict)
    calls: dict[str, PendingCall] = field(default_factory=dict)


class ResponseBook:
    """Running responses, their output items, and the accounts of message items."""

    def __init__(self, warn: WarnLimiter, bound: ItemBound) -> None:
        self.output_audio = True  # session default; a response may override it
        self._warn = warn
        self._bound = bound
        self.responses: dict[str, RunningResponse] = {}
        # Output item id -> its running response (until the response ends).
        self.item_response: dict[str, RunningResponse] = {}
        # Item id -> its account, for the whole provider session (the mirror reads it).
        self.accounts: dict[str, ItemAccount] = {}

    @property
    def running(self) -> bool:
        return bool(self.responses)

    def active_item_ids(self) -> set[str]:
        """Output items of responses still running (never edited by a history sync)."""
        return {item_id for r in self.responses.values() for item_id in r.announced}

    def generating(self, item_id: str) -> bool:
        return item_id in self.item_response

    def received_ms(self, item_id: str) -> float:
        account = self.accounts.get(item_id)
        return account.received_ms if account is not None else 0.0

    def start(
        self, response_id: str, request_id: str | None, modalities: object, out: list[Any]
    ) -> RunningResponse:
        if isinstance(modalities, list) and modalities:
            audio_out = "audio" in modalities
        else:
            audio_out = self.output_audio
        self._bound.check(len(self.responses))
        # No room left for one more item: the call is ending, its item or end cannot count.
        self._bound.check(self._bound.taken)
        response = RunningResponse(response_id, audio_out)
        self.responses[response_id] = response
        out.append(ResponseStarted(response_id, request_id))
        return response

    def response_for(self, ev: Mapping[str, Any], out: list[Any]) -> RunningResponse:
        """The response an event belongs to; started implicitly if `.created` was missed."""
        response_id = ev.get("response_id")
        if response_id is not None:
            response = self.responses.get(str(response_id))
            if response is not None:
                return response
        item_id = ev.get("item_id")
        if item_id is not None and str(item_id) in self.item_response:
            return self.item_response[str(item_id)]
        if response_id is None:
            raise KeyError("response_id")
        self._warn.warn(
            "implicit_response",
            "response events for %s arrived before response.created; starting it",
            response_id,
        )
        return self.start(str(response_id), None, None, out)

    def announce(
        self, response: RunningResponse, item: WireItem, output_index: object, out: list[Any]
    ) -> None:
        """Register an output item of `response` (idempotent); it counts against the call's
        item bound however it came (announced, or content for an id never announced)."""
        item_id = str(item["id"])
        if item_id in self.item_response:
            return
        index = (
            int(cast(Any, output_index)) if output_index is not None else len(response.announced)
        )
        self._bound.take()
        response.announced.append(item_id)
        self.item_response[item_id] = response
        item_type = item.get("type", "message")
        if item_type == "message":
            modalities: tuple[Modality, ...] = (
                ("audio", "text") if response.audio_out else ("text",)
            )
            account = ItemAccount(item_id)
            self.accounts[item_id] = account
            message = Message(item_id, modalities, account, audio_open=response.audio_out)
            response.messages[item_id] = message
            out.append(
                MessageStarted(
                    response.response_id,
                    item_id,
                    index,
                    modalities,
                    optional_str(item.get("phase")),
                    account,
                )
            )
            return
        if item_type == "function_call":
            response.calls[item_id] = PendingCall(
                item_id=item_id,
                call_id=str(item.get("call_id") or ""),
                name=str(item.get("name") or ""),
            )
        out.append(ItemAnnounced(response.response_id, item_id))

    def ended_without_items(self, response: RunningResponse) -> None:
        """`response` ended: one without any output item counts as one item of the call.

        Why: a settled response costs the call its records (its turn metrics, its event-log
        records) however empty, and no item, text or audio bound saw one — a provider pairing
        `response.created` with `response.done` and no output grew a call by ~4 KB a pair
        until it ended. A real call has few (a response cut before its first item), so the
        item bound's room for them is ample; past it the call ends (`item_budget`).
        """
        if not response.announced:
            self._bound.take()

    def close(self, response: RunningResponse) -> None:
        """`response` ended: it and its items stop running (their accounts stay)."""
        self.responses.pop(response.response_id, None)
        for item_id in response.announced:
            if self.item_response.get(item_id) is response:
                del self.item_response[item_id]
