"""Client operations in flight, and which of them a server `error` belongs to.

Every client operation the core builds is registered here under our `event_id` until the
server acknowledges it (an item event, `session.updated`, `response.created`) or rejects it.
Rejections are correlated by the echoed `event_id`; where the server sends `event_id: null`
they are matched by code or message to the oldest operation of the right kind. The one wire
concern kept here is the "already shorter" retry: the server may measure an item's audio more
coarsely than we count it (P5/P6) and refuses a cut past its own length; the cut is retried
once at the server's length, which is all the caller can have heard. The other is an item
create refused because our id is taken: the item exists (an earlier attempt whose ack was
lost went through), which is what the create wanted — success, so a retried create is
idempotent.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeAlias, TypeVar

from vocalis.providers.base import ErrorKind, OpCompleted, OpFailed, ProviderError
from vocalis.providers.openai.errors import error_kind, local_error
from vocalis.providers.openai.wire import ErrorBody, delete_event, truncate_event

logger = logging.getLogger(__name__)

T_co = TypeVar("T_co", covariant=True)

OpKind: TypeAlias = Literal[
    "session.update",
    "response.create",
    "truncate",
    "delete",
    "create",
    "retrieve",
    "commit",
    "clear",
]

# "Audio content of 2450ms is already shorter than 2535ms" (truncate past the server's length).
_ALREADY_SHORTER = re.compile(r"audio content of (\d+)\s*ms is already shorter than (\d+)\s*ms")
# "the item with id 'out_call_1' already exists" (a create under an id already taken).
_ALREADY_EXISTS = re.compile(r"id '([^']+)' already exists", re.IGNORECASE)
# "Error retrieving item: the item with id 'out_call_1' does not exist." (delete, truncate alike)
_MISSING = re.compile(r"\bthe item with id '([^']+)' does not exist", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ClientOp(Generic[T_co]):
    """A client event to send plus the id under which its result will arrive.

    `T_co` is the type its `OpCompleted.value` has (an item id, a session object, ...).
    """

    op_id: str
    kind: OpKind
    event: dict[str, Any]
    # A create's caller id for its item: a retry of the create (or the retrieve asked
    # instead) maps it to the provider's id the same way.
    local_id: str | None = None


@dataclass(frozen=True, slots=True)
class Skip:
    """An operation that must not go on the wire, and why (logged by the caller at DEBUG)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Send:
    """A client event the core needs sent (cancel an abandoned response, retry a cut)."""

    event: dict[str, Any]


ErrorOutput: TypeAlias = ProviderError | OpCompleted[object] | OpFailed | Send


@dataclass(slots=True)
class Pending:
    op_id: str
    kind: OpKind
    item_id: str | None = None
    # create: the caller's id for the item and the wire item type (for the FIFO fallback);
    # the wire item and its anchor, for the mirror when the item turns out to exist already.
    local_id: str | None = None
    item_type: str | None = None
    role: str | None = None
    wire_item: dict[str, Any] | None = None
    previous_item_id: str | None = None
    # truncate: already retried at the server's own audio length (at most once).
    retried: bool = False


class OpRegistry:
    """Pending client operations of one session (all fail when the connection is lost)."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._pending: dict[str, Pending] = {}
        # `response.create`s given up (timeout, cancel) before their response was created.
        self._cancel_on_create: set[str] = set()
        # Item ids of creates given up (timeout): their late `.added` completes no other op.
        self._abandoned_creates: set[str] = set()

    def register(self, kind: OpKind, **fields: Any) -> str:
        op_id = f"vc_{kind.replace('.', '_')}_{next(self._ids)}"
        self._pending[op_id] = Pending(op_id, kind, **fields)
        return op_id

    def new_event_id(self) -> str:
        return f"vc_evt_{next(self._ids)}"

    def __iter__(self) -> Iterator[Pending]:
        return iter(list(self._pending.values()))

    def ids(self) -> list[str]:
        return list(self._pending)

    def pop(self, op_id: str) -> Pending | None:
        return self._pending.pop(op_id, None)

    def put_back(self, pending: Pending) -> None:
        self._pending[pending.op_id] = pending

    def pop_oldest(self, kind: OpKind, item_id: str | None = None) -> Pending | None:
        for op_id, pending in self._pending.items():
            if pending.kind == kind and (item_id is None or pending.item_id == item_id):
                del self._pending[op_id]
                return pending
        return None

    def pop_create_like(self, item_type: object, role: object) -> Pending | None:
        """The oldest create of this item type and role (the server ignored our id)."""
        for candidate in self._pending.values():
            if (
                candidate.kind == "create"
                and candidate.item_type == item_type
                and candidate.role == role
            ):
                return self._pending.pop(candidate.op_id)
        return None

    @property
    def response_creates(self) -> int:
        return sum(1 for p in self._pending.values() if p.kind == "response.create")

    # ----------------------------------------------------------------- abandoned requests

    def abandon(self, op_id: str) -> None:
        """Its caller gave up on `op_id` (timeout): stop tracking it, so it cannot absorb a
        later reply, and remember what its own late reply must not do. A `response.create`'s
        response is cancelled when it shows up; a create's late `.added` is not taken for
        another create (the match for servers that ignore our item ids)."""
        pending = self._pending.pop(op_id, None)
        if pending is None:
            return
        if pending.kind == "response.create":
            self._cancel_on_create.add(op_id)
        elif pending.kind == "create" and pending.item_id is not None:
            self._abandoned_creates.add(pending.item_id)

    def cancel_requested(self) -> None:
        """Every reply requested but not created yet is cancelled when it arrives."""
        for pending in self._pending.values():
            if pending.kind == "response.create":
                self._cancel_on_create.add(pending.op_id)

    def take_cancel_on_create(self, request_id: str) -> bool:
        return _take(self._cancel_on_create, request_id)

    def take_abandoned_create(self, item_id: str) -> bool:
        """True once for the item of a create given up on (see `abandon`)."""
        return _take(self._abandoned_creates, item_id)

    def fail_all(self, reason: str) -> list[OpFailed]:
        """The connection is gone: every pending operation fails as DISCONNECTED (and no
        late reply of an abandoned one can come: the next socket is a new provider session)."""
        failed = [
            OpFailed(
                pending.op_id,
                local_error(
                    ErrorKind.DISCONNECTED,
                    f"connection lost ({reason})",
                    operation=pending.kind,
                    item_id=pending.item_id,
                ),
            )
            for pending in self._pending.values()
        ]
        self._pending.clear()
        self._cancel_on_create.clear()
        self._abandoned_creates.clear()
        return failed

    # ----------------------------------------------------------------- errors

    def on_error(
        self,
        err: ErrorBody,
        *,
        server_vad: bool,
        on_gone: Callable[[str], None],
        on_exists: Callable[[Pending], None],
    ) -> list[ErrorOutput]:
        """Outputs for one server `error`: its op's result and/or a `ProviderError`.

        `on_gone(item_id)` is called when a delete found the item already gone (success);
        `on_exists(create)` when a create found its item already there (success).
        """
        code_raw = err.get("code")
        code = str(code_raw) if code_raw is not None else None
        message = str(err.get("message") or "")
        # Matched case-insensitively; the server's wording of these texts is not stable.
        lowered = message.lower()
        exists = _ALREADY_EXISTS.search(message)
        pending = self._owner(err.get("event_id"), exists) or self._correlate(
            code, lowered, _MISSING.search(message)
        )
        error_type = err.get("type")
        error = ProviderError(
            error_kind(code, str(error_type) if error_type is not None else None),
            message,
            code,
            operation=pending.kind if pending is not None else None,
            item_id=pending.item_id if pending is not None else None,
        )
        if pending is None:
            if code == "response_cancel_not_active" or "no active response" in lowered:
                logger.debug("response.cancel with nothing active (benign)")
                return []
            return [error]
        retry = self._truncate_retry(pending, lowered)
        if retry is not None:
            # Reported (so apps see what the server said), then recovered: the op stays
            # pending under its id and completes with the retried cut.
            return [error, retry]
        out: list[ErrorOutput] = []
        if pending.kind == "delete" and (
            error.kind is ErrorKind.NOT_FOUND or "does not exist" in lowered
        ):
            # Already gone is what we wanted (e.g. the server dropped it after a cancel).
            on_gone(pending.item_id or "")
            out.append(OpCompleted(pending.op_id, None))
        elif pending.kind == "create" and exists is not None:
            # Our id is taken: an earlier attempt whose ack was lost created it.
            on_exists(pending)
            out.append(OpCompleted(pending.op_id, pending.item_id))
        elif pending.kind == "commit" and server_vad and code == "input_audio_buffer_commit_empty":
            # The server VAD already committed this audio; our commit found it empty.
            out.append(OpCompleted(pending.op_id, None))
        else:
            out.append(OpFailed(pending.op_id, error))
        if error.fatal:
            out.append(error)
        return out

    def _owner(self, event_id: object, exists: re.Match[str] | None) -> Pending | None:
        """The op an error names: by our echoed event id, or a create by the item id an
        "already exists" text names (the server may not echo the event id)."""
        pending = self._pending.pop(event_id, None) if isinstance(event_id, str) else None
        if pending is None and exists is not None:
            pending = self.pop_oldest("create", item_id=exists.group(1))
        return pending

    def _truncate_retry(self, pending: Pending, lowered: str) -> Send | None:
        """A cut the server found longer than its own copy of the audio: cut at its length.

        The server's length X comes from its error text; the caller heard at least that much
        (the cut was at what played, within what we received), so truncating at X keeps the
        provider's memory a prefix of what was heard. X of 0 means nothing to keep: delete.
        """
        if pending.kind != "truncate" or pending.retried or pending.item_id is None:
            return None
        match = _ALREADY_SHORTER.search(lowered)
        if match is None:
            return None
        server_ms = int(match.group(1))
        pending.retried = True
        self._pending[pending.op_id] = pending
        if server_ms < 1:
            pending.kind = "delete"
            return Send(delete_event(pending.op_id, pending.item_id))
        return Send(truncate_event(pending.op_id, pending.item_id, server_ms))

    def _correlate(
        self, code: str | None, lowered: str, missing: re.Match[str] | None
    ) -> Pending | None:
        """The op an error without (or with an unknown) `event_id` belongs to.

        A delete, truncate or retrieve of an item the server lacks is matched by the id the
        message names when one of that kind is pending for it: with two retrieves in flight,
        failing the wrong one would re-create an output the server already has.
        """
        kind: OpKind | None = None
        if code == "conversation_already_has_active_response" or (
            "already has an active response" in lowered
        ):
            kind = "response.create"
        elif code == "input_audio_buffer_commit_empty":
            kind = "commit"
        elif code == "item_delete_invalid_item_id" or "error deleting item" in lowered:
            kind = "delete"
        elif (
            code in ("item_truncate_invalid_item_id", "unsupported_content_type")
            or "can be truncated" in lowered
            or "already shorter than" in lowered
            or "audio_end_ms" in lowered
        ):
            kind = "truncate"
        elif code == "item_create_invalid_previous_item_id" or "previous_item_id" in lowered:
            kind = "create"
        elif code == "item_retrieve_invalid_item_id":
            kind = "retrieve"
        if kind is None:
            return None
        if missing is not None and kind in ("delete", "truncate", "retrieve"):
            named = self.pop_oldest(kind, item_id=missing.group(1))
            if named is not None:
                return named
        return self.pop_oldest(kind)


def _take(ids: set[str], key: str) -> bool:
    """Remove `key` from `ids`; whether it was there."""
    if key in ids:
        ids.discard(key)
        return True
    return False
