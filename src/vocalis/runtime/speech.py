"""`SpeechHandle`: the app's handle on one reply (`generate_reply`, `say`, a tool follow-up).

Returned immediately (the reply may be queued behind an active response); awaiting it waits
until the reply has played out or was interrupted. It never raises: a failed request is
reported through `error`, so `await session.say(...)` is safe in any flow.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Generator
from typing import Any, Literal

from vocalis.conversation.items import ConversationItem

SpeechKind = Literal["reply", "say", "tool_followup", "server"]

_ids = itertools.count(1)


class SpeechHandle:
    def __init__(self, kind: SpeechKind, *, allow_interruptions: bool = True) -> None:
        self.id = f"speech_{next(_ids)}"
        self.kind: SpeechKind = kind
        self.allow_interruptions = allow_interruptions
        self.response_id: str | None = None
        self.interrupted = False
        self.error: Exception | None = None
        # Items this reply added to the history (heard assistant messages, tool calls).
        self.items: list[ConversationItem] = []
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def done(self) -> bool:
        return self._done.done()

    async def wait_for_playout(self) -> None:
        """Until the reply played out, was interrupted, or failed."""
        await asyncio.shield(self._done)

    def __await__(self) -> Generator[Any, None, SpeechHandle]:
        yield from self.wait_for_playout().__await__()
        return self

    def _finish(self, *, interrupted: bool = False, error: Exception | None = None) -> None:
        if self._done.done():
            return
        self.interrupted = self.interrupted or interrupted
        if error is not None:
            self.error = error
        self._done.set_result(None)

    def __repr__(self) -> str:
        return f"SpeechHandle({self.id}, {self.kind}, response={self.response_id})"
