"""The transport contract: what the heard contract needs from audio I/O.

The heard contract is only as true as the transport's playback clock. So a sink does not just
accept audio: every *output segment* (one per provider message) gets its own `PlayoutResult`
— `full`, `partial(played_ms)` or `skipped` — measured from frames actually played (paced
real-time output, Twilio mark acknowledgements, the browser's playback position), never from
bytes received.

Segments queue back to back (no inter-message gap): the runtime may push message 2 while
message 1 still plays, and still gets one result per message. `clear()` is the barge-in: it
stops playback at once and resolves every pending segment (the playing one `partial`, queued
ones `skipped`).
"""

from __future__ import annotations

import abc
import asyncio
import enum
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from vocalis.audio.frame import AudioFrame


class PlayoutStatus(enum.Enum):
    FULL = "full"
    PARTIAL = "partial"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class PlayoutResult:
    segment_id: str
    status: PlayoutStatus
    # Audio actually played (ms of this segment's own timeline, from its first sample).
    played_ms: float
    # Audio handed to the sink for this segment.
    pushed_ms: float
    # Clock times (the transport's clock) of the first played frame and of the end.
    started_at: float | None = None
    ended_at: float | None = None

    @property
    def interrupted(self) -> bool:
        return self.status is not PlayoutStatus.FULL


class OutputSegment(abc.ABC):
    """One message's audio on its way to the caller.

    Subclasses implement the playback clock; the bookkeeping every sink shares lives here:
    `_accept()` guards `push()` (dropped silently once resolved, typed, never after `end()`)
    and counts the audio handed in, `_mark_started()` records the first played sample, and
    `_conclude()` builds the `PlayoutResult` (a `skipped` segment has `played_ms == 0`).
    """

    def __init__(self, segment_id: str, sample_rate: int) -> None:
        self.id = segment_id
        self.sample_rate = sample_rate
        loop = asyncio.get_running_loop()
        # Resolves with the clock time of the first *played* frame (never if skipped).
        self.started: asyncio.Future[float] = loop.create_future()
        self._result: asyncio.Future[PlayoutResult] = loop.create_future()
        self._pushed_in = 0  # samples (segment rate) handed to push()
        self._ended = False  # end() was called
        self._started_at: float | None = None

    @abc.abstractmethod
    def push(self, samples: np.ndarray) -> None:
        """Queue int16 mono audio at `sample_rate` (converted at the sink's edge)."""

    @abc.abstractmethod
    def end(self) -> None:
        """No more audio for this segment: it completes when its queued audio has played."""

    async def wait_for_playout(self) -> PlayoutResult:
        return await asyncio.shield(self._result)

    @property
    def done(self) -> bool:
        return self._result.done()

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def pushed_ms(self) -> float:
        """Audio handed to `push()` so far (ms of this segment's own audio)."""
        return self._pushed_in * 1000.0 / self.sample_rate

    def _accept(self, samples: np.ndarray) -> bool:
        """Validate a `push()`; False when the segment is resolved (late deltas are dropped)."""
        if self.done:
            return False
        if samples.dtype != np.int16 or samples.ndim != 1:
            raise ValueError(
                f"segment audio must be 1-D int16 mono, got {samples.dtype} {samples.shape}"
            )
        if self._ended:
            raise RuntimeError(f"segment {self.id!r}: push() after end()")
        self._pushed_in += samples.shape[0]
        return True

    def _mark_started(self, at: float) -> None:
        """The segment's first sample played at clock time `at` (first report wins)."""
        if self._started_at is None:
            self._started_at = at
            if not self.started.done():
                self.started.set_result(at)

    def _conclude(self, status: PlayoutStatus, played_ms: float, ended_at: float | None) -> None:
        """Resolve with the verdict; `skipped` always reports 0 ms played."""
        self._resolve(
            PlayoutResult(
                segment_id=self.id,
                status=status,
                played_ms=0.0 if status is PlayoutStatus.SKIPPED else played_ms,
                pushed_ms=self.pushed_ms,
                started_at=self._started_at,
                ended_at=ended_at,
            )
        )

    def _resolve(self, result: PlayoutResult) -> None:
        if not self._result.done():
            self._result.set_result(result)
        if not self.started.done() and result.status is PlayoutStatus.SKIPPED:
            self.started.cancel()


class AudioSink(abc.ABC):
    """Agent audio out, with a playback clock."""

    @abc.abstractmethod
    def begin_segment(self, segment_id: str, sample_rate: int) -> OutputSegment:
        """Open a segment; it plays after every earlier segment (back to back)."""

    @abc.abstractmethod
    def clear(self) -> None:
        """Barge-in: stop now; the playing segment ends `partial`, queued ones `skipped`."""

    @property
    @abc.abstractmethod
    def playing(self) -> bool:
        """True while any segment has audio queued or playing."""

    @property
    def can_pause(self) -> bool:
        """Whether `pause()`/`resume()` hold playback (needed for false-interruption resume)."""
        return False

    def pause(self) -> None:
        """Hold playback where it is (positions stop); `resume()` continues, `clear()` ends it.

        Only sinks that own their player can do this (`can_pause`); a Twilio stream cannot
        (Media Streams has `clear` but no pause).
        """
        raise NotImplementedError(f"{type(self).__name__} cannot pause playback")

    def resume(self) -> None:
        """Continue after `pause()` from the same sample (no-op when not paused)."""
        raise NotImplementedError(f"{type(self).__name__} cannot pause playback")

    async def aclose(self) -> None:
        self.clear()


class AudioSource(abc.ABC):
    """Caller audio in."""

    @abc.abstractmethod
    def frames(self, sample_rate: int) -> AsyncIterator[AudioFrame]:
        """Caller audio as mono int16 frames converted to `sample_rate`; ends on hang-up."""

    async def deliver(self, sample_rate: int, on_frame: Callable[[AudioFrame], None]) -> None:
        """Call `on_frame` with every frame `frames()` would yield; returns on hang-up.

        The default iterates `frames()`. A source fed by a callback (a socket reader, a
        device) overrides it to call `on_frame` inside its own push instead: a task wake-up
        per caller frame per session is the largest cost of the input path (#17). Either
        way an exception from `on_frame` ends the delivery and is raised here.
        """
        async for frame in self.frames(sample_rate):
            on_frame(frame)

    def forward(
        self,
        sample_rate: int,
        on_frame: Callable[[AudioFrame], None],
        on_end: Callable[[BaseException | None], None],
    ) -> Callable[[], None] | None:
        """`deliver` without a task waiting for the hang-up, where the source can.

        A source fed by a callback calls `on_frame` inside its own push, as `deliver` does,
        and `on_end` once the stream ended: with None after the last frame, or with the
        error that ended it (what `deliver` would raise). Returns the function that stops
        forwarding (the consumer is gone: later frames are not handed to it, `on_end` is not
        called). The default returns None: this source must be read by `deliver` in a task.
        A session kept a task per call waiting on `deliver` only for its end (#17).
        """
        return None


class TextSink:
    """Where words and states go for display (transcripts, UI). All methods optional."""

    def agent_text(self, segment_id: str, text: str) -> None:
        """Words of an agent message, delivered as their audio plays."""

    def agent_segment_ended(self, segment_id: str, result: PlayoutResult, heard_text: str) -> None:
        """Final verdict for a message: played / interrupted at N ms / never played."""

    def user_transcript(self, item_id: str, text: str, final: bool) -> None: ...

    def agent_state(self, state: str) -> None: ...

    def notice(self, message: str) -> None:
        """Human-readable warnings (e.g. text-only message with no TTS fallback)."""


@dataclass(frozen=True, slots=True)
class CallInfo:
    """Facts about one call, from its transport (for tools and per-call agent factories).

    transport: "twilio", "playground", "text", "file", ... (the transport's kind).
    caller: the caller's number or id when the transport knows it (Twilio: the custom
        parameter `caller`, e.g. `<Parameter name="caller" value="{{From}}"/>` in TwiML).
    parameters: Twilio custom parameters / the playground page's `?meta.*` values.
    call_id: the transport's own id of the call (Twilio: the call sid).
    """

    transport: str = "unknown"
    caller: str | None = None
    parameters: Mapping[str, str] = field(default_factory=dict)
    call_id: str | None = None


class Transport(abc.ABC):
    """A caller connection: audio both ways, optional text, and a hang-up signal."""

    @property
    def call_info(self) -> CallInfo:
        """What this transport knows about the call (transports with more override it)."""
        return CallInfo(transport=type(self).__name__.removesuffix("Transport").lower() or "call")

    @property
    @abc.abstractmethod
    def audio_in(self) -> AudioSource: ...

    @property
    @abc.abstractmethod
    def audio_out(self) -> AudioSink | None:
        """Where the agent's audio plays; None for a text-only transport (chat), for which the
        session asks the model for text instead of audio."""

    @property
    def text_out(self) -> TextSink | None:
        return None

    def text_in(self) -> AsyncIterator[str] | None:
        """Typed caller messages, when the transport has a text input."""
        return None

    @abc.abstractmethod
    async def wait_closed(self) -> None:
        """Returns when the caller hung up / the input ended."""

    async def aclose(self) -> None:
        if self.audio_out is not None:
            await self.audio_out.aclose()
