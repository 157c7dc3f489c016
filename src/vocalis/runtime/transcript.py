"""Shows an agent message's words as its audio plays, not as the provider sends them.

Providers send the transcript ahead of the audio (often by seconds, S11); showing it on
arrival tells the caller's screen words the caller never heard (P1). `TranscriptSync` releases
the word-boundary prefix that matches the segment's playback position — the same
`heard_prefix` estimate the ledger stores in history — so the UI, the history and the
provider's truncated item agree.

It is the only transcript synchronizer in vocalis. It lives in the runtime, not in the
transports, because the runtime is what feeds it (text deltas, received audio) and because an
interrupted segment's final heard text and verdict come from the ledger, which also knows how
much audio the provider sent; transports only receive the words (`TextSink.agent_text`).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from typing import Protocol, cast, runtime_checkable

from vocalis.conversation.heard import GrowingText, TimedWord
from vocalis.providers.base import ItemAccount
from vocalis.runtime.follow_ticker import follow_ticker
from vocalis.transports.base import OutputSegment, PlayoutResult, PlayoutStatus, TextSink
from vocalis.utils.clock import Clock


@runtime_checkable
class SupportsPosition(Protocol):
    """Segments that know their exact played position (e.g. `ClockedSegment`)."""

    @property
    def played_ms(self) -> float: ...


# Whether a segment class knows its position: a runtime-checkable Protocol check walks the
# protocol's members on every call (tens of µs), so it runs once per class, not per segment.
_POSITIONED: weakref.WeakKeyDictionary[type[OutputSegment], bool] = weakref.WeakKeyDictionary()


def _position_of(segment: OutputSegment) -> SupportsPosition | None:
    kind = type(segment)
    positioned = _POSITIONED.get(kind)
    if positioned is None:
        positioned = _POSITIONED[kind] = isinstance(segment, SupportsPosition)
    return cast(SupportsPosition, segment) if positioned else None


class TranscriptSync:
    """Per-segment word release, polled on the session clock every `interval` seconds (by the
    clock's shared `FollowTicker`, not a timer of its own).

    Fed by its owner: `add_text()` deltas, the item's `account` (the provider's count of the
    audio received so far, read here, never counted again; a TTS-voiced message sets
    `audio_ms` instead), `audio_complete` / `text_complete`, and optionally `word_timings`
    (provider or TTS word spans; without them positions are estimated, about one word off).
    `follow(segment)` releases words while the segment plays; `finish(result)` releases the
    rest of a fully played segment (a cut one keeps exactly what was released: the ledger has
    the last word).
    """

    def __init__(
        self,
        segment_id: str,
        sink: TextSink | None,
        clock: Clock,
        *,
        interval: float = 0.1,
        account: ItemAccount | None = None,
    ) -> None:
        self.segment_id = segment_id
        self._sink = sink
        self._clock = clock
        self._interval = interval
        self._account = account
        self._audio_ms: float | None = None
        self._text = GrowingText()  # the text and its word spans, extended per delta
        self.audio_complete = False
        self.text_complete = False
        self.word_timings: Sequence[TimedWord] | None = None
        self.released = ""
        # The segment `watch` follows, and how to leave the ticker (set once it started).
        self._watching: OutputSegment | None = None
        self._unwatch: Callable[[], None] | None = None

    @property
    def audio_ms(self) -> float:
        """Audio available for this segment: the provider's account, or the TTS audio."""
        if self._audio_ms is not None:
            return self._audio_ms
        return self._account.received_ms if self._account is not None else 0.0

    @audio_ms.setter
    def audio_ms(self, value: float) -> None:
        self._audio_ms = value

    @property
    def text(self) -> str:
        """The message's text so far."""
        return self._text.text

    def add_text(self, delta: str) -> None:
        self._text.extend(delta)

    def release_heard(self, played_ms: float) -> None:
        """Release the words heard at `played_ms` of the segment (one poll of `follow`).

        The same text `heard_prefix` gives, without its cost: the word spans are kept per
        delta, the count is redone only when the position crossed a word boundary, and a
        poll whose heard words end within what was already released stops there.
        """
        spans = self._text.spans
        count = self._text.heard(
            played_ms,
            self.audio_ms,
            word_timings=self.word_timings,
            audio_complete=self.audio_complete,
        )
        end = spans[count - 1][1] if count else 0
        if end <= len(self.released):
            return  # nothing new (holding a word back only ever shortens the prefix)
        text = self._text.text
        prefix = text[:end]
        if not self.text_complete and end == len(text):
            # The last word may still be streaming ("wea" of "weather"): hold it back.
            prefix = prefix[: prefix.rstrip().rfind(" ") + 1].rstrip()
        self._release(prefix)

    def _release(self, prefix: str) -> None:
        if self._sink is None or len(prefix) <= len(self.released):
            return
        if not prefix.startswith(self.released):
            return
        delta = prefix[len(self.released) :]
        self.released = prefix
        self._sink.agent_text(self.segment_id, delta)

    def release_all(self) -> None:
        """Everything was delivered (a full playout, or a text-only message)."""
        self._release(self.text)

    def watch(
        self,
        segment: OutputSegment,
        on_error: Callable[[BaseException], None],
        wanted: Callable[[], bool] = lambda: True,
    ) -> None:
        """Release words while `segment` plays, from its first played frame until
        `unwatch()`, with no task of its own (a response's playout watches every message).

        Polls come from the clock's shared ticker (one timer for every session). A poll that
        raises (e.g. the text sink) stops this segment's words and goes to `on_error`; a
        poll while `wanted()` is false releases nothing.
        """
        self._watching = segment
        segment.started.add_done_callback(lambda started: self._started(started, on_error, wanted))

    def _started(
        self,
        started: asyncio.Future[float],
        on_error: Callable[[BaseException], None],
        wanted: Callable[[], bool],
    ) -> None:
        segment = self._watching
        if segment is None or started.cancelled() or segment.done:
            return  # unwatched, skipped (nothing was heard), or resolved already
        started_at = started.result()
        # Decided once per segment (it was ~3% of a loaded agent's time when checked per poll).
        position = _position_of(segment)

        def poll() -> None:
            if segment.done:
                return  # resolved: `finish` has the last word
            if not wanted():
                return  # stopped (e.g. the session is closing): not one word more
            if position is not None:
                self.release_heard(position.played_ms)
            else:
                self.release_heard((self._clock.now() - started_at) * 1000.0)

        try:
            poll()
        except Exception as exc:
            on_error(exc)
            return
        ticker = follow_ticker(self._clock, self._interval)
        failed = ticker.add(poll)
        failed.add_done_callback(lambda f: _report(f, on_error))
        self._unwatch = lambda: ticker.discard(poll)

    def unwatch(self) -> None:
        """Release no more words by playback position (idempotent)."""
        self._watching = None
        stop, self._unwatch = self._unwatch, None
        if stop is not None:
            stop()

    async def follow(self, segment: OutputSegment) -> None:
        """Release words while `segment` plays; returns when it resolved (`watch` as a task:
        a poll's error is raised here, and cancelling stops the words at once)."""
        loop = asyncio.get_running_loop()
        failed: asyncio.Future[None] = loop.create_future()

        def fail(error: BaseException) -> None:
            if not failed.done():
                failed.set_exception(error)

        follower = asyncio.current_task()

        def wanted() -> bool:
            # Cancelled: the task's `finally` leaves the ticker a loop turn later.
            return follower is None or not follower.cancelling()

        self.watch(segment, fail, wanted)
        resolved = asyncio.ensure_future(segment.wait_for_playout())
        try:
            await asyncio.wait((resolved, failed), return_when=asyncio.FIRST_COMPLETED)
            if failed.done():
                failed.result()
        finally:
            self.unwatch()
            resolved.cancel()  # no helper outlives the call (a no-op once resolved)
            # A cancelled follow keeps its CancelledError, whose traceback keeps this frame:
            # holding our own task here would make a cycle that drags the whole response
            # (segments, channels, tasks) into the cyclic collector instead of freeing it.
            follower = None

    def finish(self, result: PlayoutResult) -> None:
        if result.status is PlayoutStatus.FULL:
            self.release_all()


def _report(failed: asyncio.Future[None], on_error: Callable[[BaseException], None]) -> None:
    """A follower's poll raised (its `failed` future; cancelled when it just left)."""
    if not failed.cancelled() and (error := failed.exception()) is not None:
        on_error(error)
