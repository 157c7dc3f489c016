"""One simulated realtime connection: the asyncio driver around the protocol core.

:class:`SimSession` feeds client frames to the synchronous :class:`~vocalis.sim.protocol.
ProtocolCore` and carries out what it returns: server events are stamped with an
``event_id``, recorded (:class:`~vocalis.sim.recorder.Recorder`) and queued as JSON on
``outbox`` for the socket writer (:mod:`vocalis.sim.server`); commands start and stop response
streams, arm the idle timer and close the connection. A response is streamed by a task paced on
its audio timeline (``pace``), throttled by the outbox, and interruptible; its scripted faults
fire at their protocol positions through a handler per :class:`~vocalis.sim.scenario.FaultKind`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from vocalis.sim import envelope, errors
from vocalis.sim.brain import Brain, ScriptCursor
from vocalis.sim.commands import (
    ArmIdle,
    CloseSocket,
    DisarmIdle,
    Note,
    Output,
    StartResponse,
    StopResponse,
)
from vocalis.sim.conversation import Conversation
from vocalis.sim.faults import FaultTracker
from vocalis.sim.ids import IdFactory
from vocalis.sim.log import EventLog
from vocalis.sim.protocol import ProtocolCore
from vocalis.sim.recorder import Recorder
from vocalis.sim.responses import ResponseRun
from vocalis.sim.scenario import FaultKind, FaultSpec, Scenario
from vocalis.sim.session_config import SessionConfig, SessionKind
from vocalis.sim.wire_json import encode_event

logger = logging.getLogger(__name__)

_OUTBOX_HIGH = 64
_OUTBOX_LOW = 16
_MALFORMED_FRAME = '{"type":"response.output_audio.delta","delta":"AAA'


@dataclass(frozen=True, slots=True)
class Close:
    """Outbox control: send a close frame with ``code`` and stop writing."""

    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Abort:
    """Outbox control: drop the TCP connection without a close frame."""


Frame = str | Close | Abort
Spawn = Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]


class _Drive:
    """The asyncio side of one response in flight."""

    def __init__(self, run: ResponseRun, faults: FaultTracker) -> None:
        self.run = run
        self.faults = faults
        self.stop = asyncio.Event()


class SimSession:
    """The driver and the records of one connection.

    Attributes tests read:

    * ``conversation.items`` — ordered :class:`~vocalis.sim.conversation.Item` objects
      (``id``, ``type``, ``role``, ``status``, ``text`` = text or transcript, ``audio_ms``,
      ``truncated_at_ms``; ``summary()`` gives a dict).
    * ``client_events`` / ``server_events`` — every event dict received / sent, in order,
      audio fields (``audio`` of appends, ``delta`` of audio deltas, ``content[].audio``)
      replaced by their byte count.
    * ``closed`` / ``close_code`` — set when the connection has ended.
    * ``notes`` — simulator decisions (script used, faults fired), also in the log.
    * ``config`` (the effective session), ``active`` (the response in flight, or None).
    """

    def __init__(
        self,
        *,
        index: int,
        model: str,
        scenario: Scenario,
        pace: float = 0.0,
        log: EventLog | None = None,
        session_max_seconds: float | None = None,
        script: ScriptCursor | None = None,
        max_recorded_events: int | None = None,
        kind: SessionKind = SessionKind.REALTIME,
        requested_session: dict[str, Any] | None = None,
    ) -> None:
        self.index = index
        self.scenario = scenario
        self.pace = pace
        self.core = ProtocolCore(
            index=index,
            model=model,
            scenario=scenario,
            session_max_seconds=session_max_seconds,
            script=script,
            kind=kind,
            requested_session=requested_session,
        )
        self.id = self.core.id
        self.conversation_id = self.core.conversation_id
        self.recorder = Recorder(self.id, log=log, limit=max_recorded_events)
        self.closed = False
        self.close_code: int | None = None
        self.closing = False
        self.outbox: asyncio.Queue[Frame] = asyncio.Queue()
        # The socket's synchronous write lane (``direct_ws.DirectSocket.send_text``), set by
        # the server: a frame with nothing queued ahead of it is written at once instead of
        # waking the writer task. False from it (buffer full, closing) means "queue it".
        self.send_now: Callable[[str], bool] | None = None
        self._unsent = 0  # text frames queued on ``outbox`` and not yet written
        self._drives: dict[str, _Drive] = {}
        self._spawn: Spawn | None = None
        self._idle_timer: asyncio.Task[None] | None = None
        self._drained = asyncio.Event()

    # --- views of the core and the records ----------------------------------------------------

    @property
    def config(self) -> SessionConfig:
        return self.core.config

    @property
    def conversation(self) -> Conversation:
        return self.core.conversation

    @property
    def brain(self) -> Brain:
        return self.core.brain

    @property
    def ids(self) -> IdFactory:
        return self.core.ids

    @property
    def active(self) -> ResponseRun | None:
        """The default-conversation response in flight, if any."""
        return self.core.active

    @property
    def client_events(self) -> list[dict[str, Any]]:
        return self.recorder.client_events

    @property
    def server_events(self) -> list[dict[str, Any]]:
        return self.recorder.server_events

    @property
    def notes(self) -> list[str]:
        return self.recorder.notes

    def note(self, text: str) -> None:
        self.recorder.note(text)

    async def wait_for(self, predicate: Callable[[SimSession], bool], within: float = 10.0) -> None:
        """Wait until ``predicate(self)`` holds (checked after every recorded event)."""
        await self.recorder.wait_until(lambda: predicate(self), within)

    async def wait_for_server_event(
        self, event_type: str, *, after: int = 0, within: float = 10.0
    ) -> dict[str, Any]:
        """The first sent event of ``event_type`` at index >= ``after`` (waits for it)."""
        return await self.recorder.wait_event(self.server_events, event_type, after, within)

    async def wait_for_client_event(
        self, event_type: str, *, after: int = 0, within: float = 10.0
    ) -> dict[str, Any]:
        """The first received event of ``event_type`` at index >= ``after`` (waits for it)."""
        return await self.recorder.wait_event(self.client_events, event_type, after, within)

    def server_types(self) -> list[str]:
        """Types of all sent events, in order (convenient for sequence assertions)."""
        return [str(e.get("type")) for e in self.server_events]

    def final_state(self) -> dict[str, Any]:
        return {
            "session_id": self.id,
            "close_code": self.close_code,
            "conversation": [item.summary() for item in self.conversation.items],
            "session": self.config.session,
        }

    # --- output -------------------------------------------------------------------------------

    def emit(self, event: dict[str, Any]) -> None:
        """Stamp, record, log and queue one server event."""
        if self.closing:
            return
        full: dict[str, Any] = {"type": event["type"], "event_id": self.ids.event()}
        full.update(event)
        self.recorder.sent(full)
        self._send_text(encode_event(full))

    def emit_error(self, error: errors.RealtimeError, client_event_id: str | None = None) -> None:
        self.emit({"type": "error", "error": error.payload(client_event_id)})

    def send_raw(self, text: str) -> None:
        """Queue a raw (e.g. malformed) frame; recorded as ``{"type": None, "raw": text}``."""
        if self.closing:
            return
        self.recorder.sent_raw(text)
        self._send_text(text)

    def _send_text(self, text: str) -> None:
        """Write ``text`` now when nothing is queued ahead of it, else queue it (order kept)."""
        send_now = self.send_now
        if self._unsent == 0 and send_now is not None and send_now(text):
            return
        self._unsent += 1
        self.outbox.put_nowait(text)

    def _apply(self, outputs: list[Output]) -> None:
        """Send the core's events and carry out its commands, in order."""
        for output in outputs:
            if isinstance(output, dict):
                self.emit(output)
            else:
                _COMMANDS[type(output)](self, output)

    def close(self, code: int, reason: str) -> None:
        """Queue a close frame; nothing is sent after it."""
        if not self.closing:
            self.closing = True
            self.outbox.put_nowait(Close(code, reason))
            self._stop_all()

    def abort(self) -> None:
        """Queue an abrupt connection drop (no close frame)."""
        if not self.closing:
            self.closing = True
            self.outbox.put_nowait(Abort())
            self._stop_all()

    def _stop_all(self) -> None:
        for drive in self._drives.values():
            drive.stop.set()
        self._disarm_idle()

    def frame_sent(self) -> None:
        """Called by the writer after each frame: releases a throttled response stream."""
        self._unsent -= 1
        if self.outbox.qsize() <= _OUTBOX_LOW:
            self._drained.set()

    async def _writable(self) -> None:
        while self.outbox.qsize() > _OUTBOX_HIGH and not self.closing:
            self._drained.clear()
            await self._drained.wait()
        if self.pace <= 0:
            # Unpaced, a stream never waits for its clock: yield after each event so the
            # client's events (cancel, truncate) interleave as they would on a real server.
            await asyncio.sleep(0)

    def mark_closed(self, code: int | None) -> None:
        self.closed = True
        self.closing = True
        self.close_code = code
        self._stop_all()
        self.recorder.state(self.final_state())

    # --- lifecycle and input --------------------------------------------------------------------

    def start(self, spawn: Spawn) -> None:
        """Send ``session.created`` (and ``conversation.created``); responses use ``spawn``."""
        self._spawn = spawn
        self._apply(self.core.start())

    def expire(self) -> None:
        """Session hit its maximum duration: ``session_expired`` then close 1001."""
        self._apply(self.core.expire())

    def receive(self, raw: str | bytes) -> None:
        """Handle one client frame completely (errors become ``error`` events)."""
        if self.closing:
            return
        try:
            event = envelope.decode(raw)
        except envelope.MalformedFrame as malformed:
            self.recorder.received_summary({"type": None, "malformed_bytes": len(raw)})
            self.emit_error(malformed.error)
            return
        self.recorder.received(event)
        self._apply(self.core.handle(event))

    # --- commands -------------------------------------------------------------------------------

    def _start_response(self, command: StartResponse) -> None:
        drive = _Drive(command.run, FaultTracker(command.faults))
        self._drives[command.run.id] = drive
        assert self._spawn is not None, "start() must be called before responses"
        self._spawn(self._drive(drive))

    def _stop_response(self, command: StopResponse) -> None:
        drive = self._drives.pop(command.response_id, None)
        if drive is not None:
            drive.stop.set()

    def _arm_idle(self, command: ArmIdle) -> None:
        """After a response, wait for its audio to play out (real time) plus the idle timeout."""
        self._disarm_idle()
        if self._spawn is not None and not self.closing:
            self._idle_timer = self._spawn(self._idle_after(command.delay_s))

    def _disarm_idle(self, command: DisarmIdle | None = None) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    async def _idle_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._idle_timer = None
        if not self.closing:
            self._apply(self.core.idle_timeout())

    def _close_socket(self, command: CloseSocket) -> None:
        self.close(command.code, command.reason)

    def _note(self, command: Note) -> None:
        self.note(command.text)

    # --- response streams -----------------------------------------------------------------------

    async def _sleep(self, drive: _Drive, seconds: float) -> None:
        """Sleep, waking early when the response is stopped (cancel, close)."""
        if seconds <= 0:
            return
        try:
            async with asyncio.timeout(seconds):
                await drive.stop.wait()
        except TimeoutError:
            pass

    def _over(self, drive: _Drive) -> bool:
        return drive.stop.is_set() or self.closing

    async def _drive(self, drive: _Drive) -> None:
        """Stream one response; a bug in it fails the response instead of the connection."""
        try:
            await self._stream_response(drive)
        except Exception:
            logger.exception("simulated response %s crashed", drive.run.id)
            if not drive.run.finished and not self.closing:
                error = {"type": "server_error", "code": "server_error"}
                self._apply(self.core.end_response(drive.run, lambda run: run.fail(error)))
        finally:
            self._drives.pop(drive.run.id, None)

    async def _stream_response(self, drive: _Drive) -> None:
        run = drive.run
        if run.needs_synthesis:
            await asyncio.to_thread(run.prepare)
        for fault in drive.faults.before_created():
            await self._fire(fault, drive)
        if self._over(drive):
            return
        self._apply(self.core.response_created(run))
        if await self._after(drive, run.created_event()):
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        for element in run.stream():
            if isinstance(element, float):
                if self.pace > 0:
                    # A plain sleep: waking early on a cancel is not needed (the core already
                    # sent its events; the stream just stops here) and a timeout context per
                    # pacing point costs two exceptions when it expires.
                    delay = started + element / 1000.0 / self.pace - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if self._over(drive):
                        return
                continue
            self._apply(self.core.response_event(run, element))
            if element["type"] == "response.done":
                # Faults placed "after response.done" (e.g. a drop between turns) still fire.
                await self._after(drive, element)
                return
            if await self._after(drive, element):
                return
            await self._writable()
            if self._over(drive):
                return

    async def _after(self, drive: _Drive, event: dict[str, Any]) -> bool:
        """Fire faults due after ``event``; True when the response is over."""
        if drive.faults:
            for fault in drive.faults.after_event(event, drive.run.item_audio_ms):
                await self._fire(fault, drive)
        return self._over(drive)

    async def _fire(self, fault: FaultSpec, drive: _Drive) -> None:
        self.note(f"fault {fault.kind} fired in {drive.run.id}")
        await _FAULTS[fault.kind](self, fault, drive)

    # --- fault handlers ---------------------------------------------------------------------------

    async def _fault_drop(self, fault: FaultSpec, drive: _Drive) -> None:
        self.abort()

    async def _fault_pause(self, fault: FaultSpec, drive: _Drive) -> None:
        await self._sleep(drive, fault.seconds)

    async def _fault_malformed(self, fault: FaultSpec, drive: _Drive) -> None:
        self.send_raw(fault.frame or _MALFORMED_FRAME)

    async def _fault_unknown_event(self, fault: FaultSpec, drive: _Drive) -> None:
        self.emit({"type": fault.event_type, "response_id": drive.run.id})

    async def _fault_error(self, fault: FaultSpec, drive: _Drive) -> None:
        error = errors.server_error(
            fault.code, fault.message, param=fault.param, type=fault.error_type
        )
        self.emit_error(error)

    async def _fault_fail(self, fault: FaultSpec, drive: _Drive) -> None:
        error: dict[str, Any] = {
            "type": fault.error_type or "server_error",
            "code": fault.code or "server_error",
        }
        if fault.message:
            error["message"] = fault.message
        self._apply(self.core.end_response(drive.run, lambda run: run.fail(error)))

    async def _fault_incomplete(self, fault: FaultSpec, drive: _Drive) -> None:
        reason = fault.reason
        self._apply(self.core.end_response(drive.run, lambda run: run.end_incomplete(reason)))

    async def _fault_session_expired(self, fault: FaultSpec, drive: _Drive) -> None:
        self.expire()


_COMMANDS: dict[type, Callable[[SimSession, Any], None]] = {
    StartResponse: SimSession._start_response,
    StopResponse: SimSession._stop_response,
    ArmIdle: SimSession._arm_idle,
    DisarmIdle: SimSession._disarm_idle,
    CloseSocket: SimSession._close_socket,
    Note: SimSession._note,
}

FaultHandler = Callable[[SimSession, FaultSpec, _Drive], Awaitable[None]]
_FAULTS: dict[FaultKind, FaultHandler] = {
    FaultKind.DROP: SimSession._fault_drop,
    FaultKind.STALL: SimSession._fault_pause,
    FaultKind.SLOW_FIRST_BYTE: SimSession._fault_pause,
    FaultKind.MALFORMED_FRAME: SimSession._fault_malformed,
    FaultKind.UNKNOWN_EVENT: SimSession._fault_unknown_event,
    FaultKind.ERROR: SimSession._fault_error,
    FaultKind.FAIL: SimSession._fault_fail,
    FaultKind.INCOMPLETE: SimSession._fault_incomplete,
    FaultKind.SESSION_EXPIRED: SimSession._fault_session_expired,
}
assert set(_FAULTS) == set(FaultKind), "every fault kind needs a handler"
