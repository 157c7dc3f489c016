"""Playout of one provider response: each message is one output segment.

Messages are taken from the generation strictly in order. Each audio message gets its own
sink segment (segment id = provider item id) and its own `PlayoutResult`, measured by the
transport's playback clock — this per-message result is what lets the ledger truncate the
right item at the right position (S1, S2) and delete the ones never heard.

Message N+1's audio is pushed as soon as message N's audio is complete, while N still plays:
the sink queues segments back to back, so there is no inter-message gap (LiveKit §8.7), yet
each message still gets its own result.

Text goes through a `TranscriptSync` per message (words appear as they are heard). A text-only
message under an audio transport is voiced by the TTS fallback when one is configured;
otherwise the caller sees the text and a notice explains why nothing was heard.

Nothing here decides what the provider should remember: `outcomes()` just reports what
happened, for the ledger.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

import numpy as np

from vocalis.conversation.heard import DEFAULT_MS_PER_CHAR, speech_rate
from vocalis.conversation.items import CutBy
from vocalis.conversation.ledger import MessageOutcome, Playout
from vocalis.providers.base import Generation, MessageGeneration
from vocalis.runtime.metrics import first_audible_offset
from vocalis.runtime.tasks import TaskOwner
from vocalis.runtime.transcript import TranscriptSync
from vocalis.transports.base import AudioSink, OutputSegment, PlayoutResult, TextSink
from vocalis.utils.clock import Clock

# A message's end status → who cut it short when it was not the caller (see `CutBy`).
_CUT_BY: dict[str, CutBy] = {"incomplete": "provider", "disconnected": "connection"}


class TTSFallback(Protocol):
    """Voices text-only messages when the transport expects audio."""

    sample_rate: int

    async def synthesize(self, text: str) -> np.ndarray:
        """int16 mono samples at `sample_rate` for `text`."""
        ...


TEXT_ONLY_NOTICE = (
    "The model sent a text-only message while audio output is expected, and no TTS fallback "
    "is configured: the text is shown but the caller did not hear it."
)


@dataclass(slots=True)
class PulledMessage:
    """One message the runtime took from the generation, and what happened to it."""

    message: MessageGeneration
    sync: TranscriptSync
    pulled_at: float
    segment: OutputSegment | None = None
    # (characters before, audio ms received) at each text delta: the message's own speaking
    # rate, for placing words in audio that stopped early (`heard.speech_rate`).
    text_marks: list[tuple[int, float]] = field(default_factory=list)
    via_tts: bool = False
    result: PlayoutResult | None = None
    # Offset (ms) of the first audible sample inside this message, once seen.
    first_voice_ms: float | None = None

    @property
    def has_provider_audio(self) -> bool:
        return "audio" in self.message.modalities and not self.via_tts

    @property
    def received_ms(self) -> float:
        """Audio of this message in ms: the provider's account of the item, or what the sink
        was given when the TTS fallback voiced it (or nothing did)."""
        if self.has_provider_audio:
            return self.message.account.received_ms
        return self.segment.pushed_ms if self.segment is not None else 0.0

    def outcome(self, *, stalled: bool = False) -> MessageOutcome:
        """How this message went out; `stalled`: the watchdog cancelled the response (so a
        cancelled item was cut by the provider's silence, not by the caller)."""
        # Received audio and text come from the provider's account of the item (the one
        # count); played audio from the transport.
        message = self.message
        text = message.account.text
        playout: Playout
        if self.result is not None:
            playout = self.result.status.value
            played = self.result.played_ms
        elif self.segment is None and not self.has_provider_audio and not self.via_tts:
            # Text-only, shown on the text sink: delivered in full once its text ended.
            playout = "full" if self.sync.text_complete else "partial"
            played = 0.0
        else:
            playout, played = "skipped", 0.0
        received = self.received_ms
        complete = message.status == "completed" or not self.has_provider_audio
        rate = None if complete else speech_rate(self.text_marks, received)
        return MessageOutcome(
            item_id=message.item_id,
            playout=playout,
            played_ms=played,
            received_ms=received,
            generated_text=text,
            has_audio=self.has_provider_audio,
            audio_complete=complete,
            ms_per_char=rate or DEFAULT_MS_PER_CHAR,
            cut_by=_CUT_BY.get(message.status or "")
            or ("provider" if stalled and message.status == "cancelled" else None),
            created_at=self.pulled_at,
        )


class ResponsePlayout:
    """Pulls a generation's messages into the sink, one segment per message."""

    def __init__(
        self,
        generation: Generation,
        *,
        sink: AudioSink | None,
        text_sink: TextSink | None,
        clock: Clock,
        owner: TaskOwner,
        sample_rate: int,
        tts: TTSFallback | None = None,
        on_progress: Callable[[], None] | None = None,
        on_first_frame: Callable[[], None] | None = None,
        transcript_interval: float = 0.1,
    ) -> None:
        self.generation = generation
        self._sink = sink
        self._text_sink = text_sink
        self._clock = clock
        self._owner = owner
        self._rate = sample_rate
        self._tts = tts
        self._on_progress = on_progress
        self._on_first_frame = on_first_frame
        self._interval = transcript_interval
        self.pulled: list[PulledMessage] = []
        # How many of `pulled` run() has taken; the rest were begun ahead of it, synchronously
        # (by `prestart`, or as the previous message's audio ended in the provider's step).
        self._taken = 0
        # `run` waiting for the next message to be announced (`_take` wakes it).
        self._waiter: asyncio.Future[None] | None = None
        self.first_audio_received_at: float | None = None
        self._voice_found = False
        self._notice_sent = False
        self.stopped = False

    # ------------------------------------------------------------------ pulling

    async def run(self) -> None:
        """Push every message of the generation; returns when the response has no more.

        Cancelling this task is how an interruption stops pulling: the messages not pulled yet
        stay unpulled (the ledger deletes them) and the current segment was already cleared.
        """
        try:
            while not self.stopped:
                pulled = await self._announced()
                if pulled is None:
                    break
                await self._complete(pulled)
        finally:
            self.generation.messages.stop_forwarding()
            for pulled in self.pulled:
                if pulled.segment is not None and not pulled.segment.done:
                    # Stopped early without a clear (stall): what was received still plays.
                    pulled.segment.end()

    def stop(self) -> None:
        self.stopped = True
        self.generation.messages.stop_forwarding()  # later messages stay unpulled

    async def _announced(self) -> PulledMessage | None:
        """The next message: begun already (by `prestart`, or as the previous audio ended),
        else begun inside the provider's receive step that announces it (None once the
        generation has no more, or pulling stopped).

        Why not `await messages.recv()`: the task would resume a loop turn after the
        announcement, and the message's first audio (often in the same socket read) would
        wait for it.
        """
        messages = self.generation.messages
        if self._taken == len(self.pulled):
            self._watch_next()
        while self._taken == len(self.pulled) and not self.stopped and not messages.closed:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            messages.on_close(partial(_wake, waiter))  # not `self`: no cycle through it
            try:
                await waiter
            finally:
                self._waiter = None
        if self.stopped:
            return None
        if self._taken < len(self.pulled):
            self._taken += 1
            return self.pulled[self._taken - 1]
        await messages.wait_closed()  # closed: raises the generation's error, as `recv` did
        return None

    def prestart(self) -> None:
        """Begin the first message synchronously: now if the provider announced it already,
        else inside the receive step that announces it.

        Called as the run is created (inside the session's dispatch of `GenerationStarted`):
        the message and its first audio usually arrive in the same socket read as the
        response's start, so the segment opens and the audio reaches the sink there, instead
        of after the run's task was scheduled (a loop turn on the first-audio path).
        """
        if self._sink is None or self.stopped or self.pulled:
            return
        self._watch_next()

    def _watch_next(self) -> None:
        """Begin the next message now if it was announced, else when it is (`_take`).

        Not on a closing session: the run is being torn down, and what it takes now would
        never be let go by its `close()`.
        """
        if self._owner.closed or self.stopped:
            return
        messages = self.generation.messages
        message = messages.try_recv()
        if message is not None:
            self._begin(message)
        elif not messages.closed:
            messages.forward_to(self._take)

    def _take(self, message: MessageGeneration) -> None:
        """The provider announced the next message: begin it in its receive step. One
        message only: the one after it waits until this one's audio ended (`_audio_ended`)."""
        self.generation.messages.stop_forwarding()
        if self.stopped or self._owner.closed:
            return  # never pulled: the ledger deletes it
        self._begin(message)  # a failure closes `messages` with it (run raises)
        if self._waiter is not None:
            _wake(self._waiter)

    def _progress(self) -> None:
        if self._on_progress is not None:
            self._on_progress()

    def _begin(self, message: MessageGeneration) -> PulledMessage:
        """The synchronous start of a message: pulled, its text taken, and an audio
        message's segment opened (its words following playback) with the provider's chunks
        forwarded into it."""
        sync = TranscriptSync(
            message.item_id,
            self._text_sink,
            self._clock,
            interval=self._interval,
            account=message.account,
        )
        pulled = PulledMessage(message=message, sync=sync, pulled_at=self._clock.now())
        self.pulled.append(pulled)
        self._progress()
        self._take_text(pulled)
        if self._sink is not None and "audio" in message.modalities:
            segment = self._open_segment(pulled, self._rate)
            message.audio.forward_to(self._audio_forwarder(pulled, segment))
            message.audio.on_close(lambda: self._audio_ended(pulled, segment))
        return pulled

    def _audio_ended(self, pulled: PulledMessage, segment: OutputSegment) -> None:
        """The provider ended this message's audio (inside its receive step): end the segment
        and begin the next message at once, so its segment follows with no task hop (also
        when run() is still messages behind: segments queue back to back in the sink)."""
        if self.stopped or segment.done:
            return
        pulled.sync.audio_complete = True
        segment.end()
        if pulled is self.pulled[-1]:
            self._watch_next()

    async def _complete(self, pulled: PulledMessage) -> None:
        """The rest of a message: its audio's end, or its text (voiced by TTS if configured)."""
        text = pulled.message.text
        if self._sink is None:
            await text.wait_closed()
            return
        if pulled.segment is not None:
            await self._pump_audio(pulled, pulled.segment)
        elif self._tts is not None:
            await text.wait_closed()
            await self._voice_text(pulled)
        else:
            if not self._notice_sent and self._text_sink is not None:
                self._text_sink.notice(TEXT_ONLY_NOTICE)
                self._notice_sent = True
            await text.wait_closed()

    def _open_segment(self, pulled: PulledMessage, sample_rate: int) -> OutputSegment:
        assert self._sink is not None
        segment = self._sink.begin_segment(pulled.message.item_id, sample_rate)
        pulled.segment = segment
        segment.started.add_done_callback(self._started)
        owner, name = self._owner, f"sync:{segment.id}"
        pulled.sync.watch(segment, lambda error: owner.report(name, error))
        return segment

    def _started(self, fut: asyncio.Future[float]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            return
        if self._on_first_frame is not None:
            self._on_first_frame()

    async def _pump_audio(self, pulled: PulledMessage, segment: OutputSegment) -> None:
        """Wait until the provider ends the message's audio, then end its segment.

        Chunks are pushed from inside the provider's receive callback (`Channel.forward_to`,
        attached in `_begin`), not by this task: a task hop per chunk was most of the added
        latency between the provider's audio delta and the sink.
        """
        sync = pulled.sync
        audio = pulled.message.audio
        try:
            await audio.wait_closed()
        finally:
            # Cancelled (interruption) or failed: later chunks must not reach the sink.
            audio.stop_forwarding()
        sync.audio_complete = True
        segment.end()

    def _audio_forwarder(
        self, pulled: PulledMessage, segment: OutputSegment
    ) -> Callable[[np.ndarray], None]:
        """The per-chunk step of `_pump_audio`, run synchronously for each provider chunk."""
        ms_per_sample = 1000.0 / self._rate

        def push(chunk: np.ndarray) -> None:
            if segment.done:
                return  # cleared: drop without pushing (the provider may still send)
            if self.first_audio_received_at is None:
                self.first_audio_received_at = self._clock.now()
            if not self._voice_found:
                self._find_first_voice(pulled, chunk, ms_per_sample)
            segment.push(chunk)
            self._progress()

        return push

    def _find_first_voice(
        self, pulled: PulledMessage, samples: np.ndarray, ms_per_sample: float
    ) -> None:
        """Note where the response's first audible sample is, if it is in `samples`.

        `samples` are about to be pushed after the segment's audio so far (`pushed_ms`).
        Callers check `_voice_found` first, so a chunk after the first voice costs nothing.
        """
        offset = first_audible_offset(samples)
        if offset is not None:
            self._voice_found = True
            before = pulled.segment.pushed_ms if pulled.segment is not None else 0.0
            pulled.first_voice_ms = before + offset * ms_per_sample

    async def _voice_text(self, pulled: PulledMessage) -> None:
        assert self._tts is not None
        text = pulled.sync.text
        if not text.strip():
            return
        pulled.via_tts = True
        samples = await self._tts.synthesize(text)
        segment = self._open_segment(pulled, self._tts.sample_rate)
        ms = samples.shape[0] * 1000.0 / self._tts.sample_rate
        if not self._voice_found:
            self._find_first_voice(pulled, samples, 1000.0 / self._tts.sample_rate)
        segment.push(samples)
        pulled.sync.audio_ms = ms  # the TTS audio, not the provider's (there is none)
        pulled.sync.audio_complete = True
        segment.end()
        self._progress()

    def _take_text(self, pulled: PulledMessage) -> None:
        """Take the message's text deltas inside the provider's receive step, from now until
        its text ends or `close()`: no task per message (most of a response's tasks were
        such pumps, all landing on the loop at a lockstep response boundary, #17)."""
        # Without audio to follow, words are shown as they arrive.
        show_now = self._sink is None or (
            "audio" not in pulled.message.modalities and self._tts is None
        )
        sync = pulled.sync
        message = pulled.message
        marks = pulled.text_marks
        live = False

        def take(delta: str) -> None:
            # Taken like audio, so the audio received so far is exact at each live delta:
            # `text_marks` measure the speaking rate. Deltas queued before the message was
            # begun arrived at an unknown audio position.
            if live:
                marks.append((len(sync.text), message.audio_received_ms))
            sync.add_text(delta)
            if show_now:
                sync.release_all()
            self._progress()

        def guarded(delta: str) -> None:
            try:
                take(delta)
            except Exception as error:  # reported like a failed task; no more text taken
                message.text.stop_forwarding()
                message.text.on_close(_nothing)
                self._owner.report(f"text:{message.item_id}", error)

        def ended() -> None:
            sync.text_complete = True
            if show_now:
                sync.release_all()

        message.text.forward_to(guarded)
        live = True
        message.text.on_close(ended)

    # ------------------------------------------------------------------ results

    async def wait_played(self) -> None:
        """Wait until every pulled segment has its playout result (immediate after a clear)."""
        for pulled in list(self.pulled):
            if pulled.segment is not None:
                pulled.result = await pulled.segment.wait_for_playout()
                pulled.sync.finish(pulled.result)
            pulled.sync.unwatch()

    def close(self) -> None:
        """Take no more text and follow no more playback positions (idempotent)."""
        for pulled in self.pulled:
            pulled.message.text.stop_forwarding()
            pulled.sync.unwatch()

    def outcomes(self, *, stalled: bool = False) -> list[MessageOutcome]:
        return [pulled.outcome(stalled=stalled) for pulled in self.pulled]

    @property
    def first_played_at(self) -> float | None:
        for pulled in self.pulled:
            started = pulled.segment.started if pulled.segment is not None else None
            if started is not None and started.done() and not started.cancelled():
                return started.result()
        return None

    @property
    def first_voice_played_at(self) -> float | None:
        for pulled in self.pulled:
            if pulled.first_voice_ms is None:
                continue
            result = pulled.result
            segment = pulled.segment
            if segment is None or not segment.started.done() or segment.started.cancelled():
                return None
            if result is not None and result.played_ms < pulled.first_voice_ms:
                return None  # cut before the first audible sample
            return segment.started.result() + pulled.first_voice_ms / 1000.0
        return None


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _nothing() -> None:
    """A text channel's end, once its taker failed (the text stays incomplete)."""
