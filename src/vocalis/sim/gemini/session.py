"""One simulated Gemini Live session: the sans-I/O BidiGenerateContent core.

Frames in (:meth:`GeminiSimSession.receive`), time in (:meth:`poll` with the current time),
frames and close decisions out; :meth:`next_deadline` says when to poll next. No sockets, no
asyncio: the shell in :mod:`~vocalis.sim.gemini.shell` moves bytes and sleeps.

The conversation rules (``docs/sim-server.md``, Gemini section):

* ``setup`` must come first; ``setupComplete`` answers it; a resumption handle restores the
  history it was issued for (an unknown handle closes with 1007).
* A caller turn ends on server VAD (speech then silence), on ``activityEnd`` (manual mode),
  on ``audioStreamEnd`` mid-speech, on ``clientContent`` with ``turnComplete`` or on
  ``realtimeInput.text``; the model then answers from the scenario script or the default brain.
* Speech onset (VAD or ``activityStart``) and any ``clientContent`` interrupt a model turn
  that has not completed; the history keeps what was *sent*.
* ``toolCall`` pauses the turn until every call has a ``toolResponse``; a barge-in meanwhile
  cancels them (``toolCallCancellation``) and later responses to cancelled ids are recorded
  in :attr:`late_tool_responses`, not added to the history.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vocalis.sim.brain import Brain, PlannedMessage, ScriptCursor
from vocalis.sim.conversation import Item
from vocalis.sim.gemini import messages as msg
from vocalis.sim.gemini.history import GeminiHistory, HistoryPart, HistoryTurn, Role
from vocalis.sim.gemini.input import Boundary, InputTrack
from vocalis.sim.gemini.resumption import ResumptionStore
from vocalis.sim.gemini.setup import SetupConfig, parse_setup
from vocalis.sim.gemini.turn_run import RunState, TurnRun, plan_steps
from vocalis.sim.gemini.wire import (
    WireError,
    b64decode_any,
    dumps,
    field,
    mapping,
    parse_frame,
    pcm_rate,
)
from vocalis.sim.log import b64_len
from vocalis.sim.scenario import Scenario
from vocalis.sim.session import Abort as Abort
from vocalis.sim.session import Close as Close
from vocalis.sim.voice import Speech, speak

CLOSE_INVALID = 1007
CLOSE_ABORTED = 1011


@dataclass(frozen=True, slots=True)
class Send:
    text: str


Outgoing = Send | Close | Abort


@dataclass(frozen=True, slots=True)
class SessionLimits:
    """Connection lifetime: ``goAway`` at ``max_s - go_away_lead_s``, closed at ``max_s``."""

    max_s: float | None = None
    go_away_lead_s: float = 5.0


class GeminiSimSession:
    """State and decisions of one connection. Public attributes are for tests to read."""

    def __init__(
        self,
        index: int,
        *,
        scenario: Scenario,
        now: float,
        pace: float = 0.0,
        resumption: ResumptionStore | None = None,
        cursor: ScriptCursor | None = None,
        limits: SessionLimits = SessionLimits(),
        constrained: bool = False,
        max_recorded: int | None = None,
        recorder: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.index = index
        self.constrained = constrained
        self.setup: SetupConfig | None = None
        self.history = GeminiHistory()
        self.resumed_from: str | None = None
        # Audio-free copies of every message both ways, the newest `max_recorded` kept (None:
        # all, as tests want; 0: none, as a long-running sim-server wants). `recorder` also
        # gets each one (the event log).
        self.client_messages: deque[dict[str, Any]] = deque(maxlen=max_recorded)
        self.server_messages: deque[dict[str, Any]] = deque(maxlen=max_recorded)
        self._recorder = recorder
        self._recording = max_recorded != 0 or recorder is not None
        self.late_tool_responses: list[str] = []
        self.cancelled_call_ids: list[str] = []
        self.usage: list[msg.Usage] = []
        self.notes: list[str] = []
        self.closed: Close | Abort | None = None
        self._scenario = scenario
        self._brain = Brain(scenario, cursor)
        self._pace = pace
        self._store = resumption if resumption is not None else ResumptionStore()
        self._limits = limits
        self._started = now
        self._go_away_sent = False
        self._run: TurnRun | None = None
        self._input: InputTrack | None = None
        self._call_seq = 0
        self._prompt_before = (0, 0)
        self.speaker: Callable[[PlannedMessage], Speech] = self._speak

    # -- the public core API ---------------------------------------------------------------

    @property
    def generating(self) -> bool:
        """A model turn is in progress (a barge-in now would interrupt it)."""
        return self._run is not None and self._run.active

    def receive(self, frame: str | bytes, now: float) -> list[Outgoing]:
        if self.closed is not None:
            return []
        try:
            message = parse_frame(frame)
            self._record_in(message)
            out = self._dispatch(message, now)
        except WireError as exc:
            return self._close(CLOSE_INVALID, str(exc)[:120])
        return out + self.poll(now)

    def poll(self, now: float) -> list[Outgoing]:
        """Everything due by ``now``: model content, turn ends, goAway, the lifetime close."""
        if self.closed is not None:
            return []
        out: list[dict[str, Any]] = []
        run = self._run
        if run is not None and run.active:
            out += run.advance(now)
            if run.state is RunState.DONE and not run.turn.interrupted:
                out += self._turn_finished(run)
        sends = [self._send(m) for m in out]
        return sends + self._lifetime(now)

    def next_deadline(self) -> float | None:
        deadlines = []
        if self._run is not None and self._run.active:
            deadlines.append(self._run.next_deadline())
        if self._limits.max_s is not None and self.setup is not None:
            end = self._started + self._limits.max_s
            deadlines.append(end if self._go_away_sent else end - self._limits.go_away_lead_s)
        return min((d for d in deadlines if d is not None), default=None)

    def go_away(self, now: float, seconds_left: float) -> list[Outgoing]:
        """Announce the end of this connection in ``seconds_left`` (tests, faults)."""
        self._limits = SessionLimits(now - self._started + seconds_left, seconds_left)
        self._go_away_sent = True
        return [self._send(msg.go_away(seconds_left))]

    def drop(self) -> list[Outgoing]:
        """Simulate a network failure: the connection is gone without a close frame."""
        self.closed = Abort()
        return [self.closed]

    def mark_closed(self, code: int) -> None:
        if self.closed is None:
            self.closed = Close(code, "closed by client")

    # -- dispatch --------------------------------------------------------------------------

    def _dispatch(self, message: dict[str, Any], now: float) -> list[Outgoing]:
        setup = field(message, "setup")
        if self.setup is None:
            if setup is None:
                raise WireError("Invalid argument: the first message must be setup")
            return self._on_setup(setup)
        if setup is not None:
            raise WireError("Invalid argument: setup was already received")
        realtime = mapping(message, "realtimeInput", "realtime_input")
        if realtime is not None:
            return self._on_realtime(realtime, now)
        content = mapping(message, "clientContent", "client_content")
        if content is not None:
            return self._on_client_content(content, now)
        tools = mapping(message, "toolResponse", "tool_response")
        if tools is not None:
            return self._on_tool_response(tools, now)
        raise WireError("Invalid argument: unknown client message")

    def _on_setup(self, raw: Any) -> list[Outgoing]:
        setup = parse_setup(raw)
        if setup.resume_handle is not None:
            state = self._store.restore(setup.resume_handle)
            if state is None:
                raise WireError("Invalid argument: unknown session resumption handle")
            self.history = state.history
            self.resumed_from = setup.resume_handle
        self.setup = setup
        self._input = InputTrack(setup)
        out: list[Outgoing] = [self._send(msg.setup_complete())]
        if setup.resumption:
            handle = self._store.issue(self.history, self.index)
            out.append(self._send(msg.resumption_update(handle)))
        return out

    def _on_realtime(self, realtime: dict[str, Any], now: float) -> list[Outgoing]:
        track = self._input
        assert track is not None
        boundaries: list[Boundary] = []
        audio = mapping(realtime, "audio", "realtime_input.audio")
        chunks = field(realtime, "mediaChunks") or []
        for blob in ([audio] if audio is not None else []) + list(chunks):
            rate = pcm_rate(field(blob, "mimeType"), "realtime_input.audio.mime_type")
            boundaries += track.audio(b64decode_any(field(blob, "data"), "audio.data"), rate)
        if field(realtime, "activityStart") is not None:
            boundaries += track.activity_start()
        if field(realtime, "activityEnd") is not None:
            boundaries += track.activity_end()
        if field(realtime, "audioStreamEnd"):
            boundaries += track.stream_end()
        out: list[Outgoing] = []
        for boundary in boundaries:
            out += (
                self._barge_in() if boundary.kind == "start" else self._caller_turn(boundary, now)
            )
        text = field(realtime, "text")
        if isinstance(text, str) and text:
            out += self._barge_in()
            self.history.append(HistoryTurn("user", "realtime", [HistoryPart("text", text)]))
            out += self._respond(now)
        return out

    def _on_client_content(self, content: dict[str, Any], now: float) -> list[Outgoing]:
        out = self._barge_in()  # client content interrupts any current generation
        for turn in field(content, "turns") or []:
            self.history.append(_client_turn(turn))
        if field(content, "turnComplete"):
            out += self._respond(now)
        return out

    def _on_tool_response(self, tools: dict[str, Any], now: float) -> list[Outgoing]:
        run = self._run
        pending = (
            {c.id for c in run.pending_calls}
            if run and run.state is RunState.AWAITING_TOOLS
            else set()
        )
        parts: list[HistoryPart] = []
        for response in field(tools, "functionResponses") or []:
            call_id = response.get("id") if isinstance(response, dict) else None
            if call_id in self.cancelled_call_ids:
                self.late_tool_responses.append(str(call_id))
                continue
            if call_id not in pending:
                self.notes.append(f"toolResponse for unknown call id {call_id!r} ignored")
                continue
            body = response.get("response")
            parts.append(
                HistoryPart(
                    "function_response",
                    call_id=call_id,
                    name=response.get("name"),
                    response=body if isinstance(body, dict) else {"output": body},
                )
            )
        if not parts:
            return []
        self.history.append(HistoryTurn("user", "tool_response", parts))
        answered = {
            p.call_id for t in self.history.turns if t.source == "tool_response" for p in t.parts
        }
        if run is not None and run.tool_responses_complete({a for a in answered if a}):
            run.finish_tools()
            return self._respond(now)
        return []

    # -- turns -----------------------------------------------------------------------------

    def _barge_in(self) -> list[Outgoing]:
        run = self._run
        if run is None or not run.active or (self.setup is not None and not self.setup.interrupts):
            return []
        self.cancelled_call_ids += [
            c.id for c in run.pending_calls if run.state is RunState.AWAITING_TOOLS
        ]
        return [self._send(m) for m in run.interrupt()]

    def _caller_turn(self, boundary: Boundary, now: float) -> list[Outgoing]:
        assert self.setup is not None
        transcript = self._brain.take_user_transcript()
        part = HistoryPart("audio", text=transcript or "", audio_ms=boundary.turn_ms)
        self.history.append(HistoryTurn("user", "realtime", [part]))
        out: list[Outgoing] = []
        if self.setup.input_transcription and transcript:
            out.append(self._send(msg.input_transcription(transcript)))
        return out + self._respond(now)

    def _respond(self, now: float) -> list[Outgoing]:
        assert self.setup is not None
        if self._run is not None and self._run.active:
            return []  # NO_INTERRUPTION: the running turn goes on; this input is in context
        plan = self._brain.plan(
            instructions=self._last_client_text(),
            out_of_band=False,
            items=self._brain_items(),
            tools=self.setup.brain_tools,
            tool_choice="auto",
        )
        self.notes.append(f"turn answered by {plan.source}")
        steps = plan_steps(plan, self.speaker, self._new_call_id)
        turn = self.history.append(HistoryTurn("model", "generated"))
        self._prompt_before = self.history.prompt_tokens()
        self._run = TurnRun(
            steps,
            turn,
            now=now,
            pace=self._pace,
            transcribe=self.setup.output_transcription,
            text_output=self.setup.modality == "TEXT",
        )
        return []

    def _turn_finished(self, run: TurnRun) -> list[dict[str, Any]]:
        audio, text = run.turn.tokens()
        prompt_audio, prompt_text = self._prompt_before
        usage = msg.Usage(prompt_audio, prompt_text, audio, text)
        self.usage.append(usage)
        out = [msg.usage_metadata(usage)]
        assert self.setup is not None
        if self.setup.resumption:
            out.append(msg.resumption_update(self._store.issue(self.history, self.index)))
        return out

    def _lifetime(self, now: float) -> list[Outgoing]:
        if self._limits.max_s is None or self.setup is None:
            return []
        end = self._started + self._limits.max_s
        if now >= end:
            return self._close(CLOSE_ABORTED, "The connection lifetime was exceeded (GoAway).")
        if not self._go_away_sent and now >= end - self._limits.go_away_lead_s:
            self._go_away_sent = True
            return [self._send(msg.go_away(end - now))]
        return []

    # -- helpers ---------------------------------------------------------------------------

    def _speak(self, planned: PlannedMessage) -> Speech:
        assert self.setup is not None
        voice = self.setup.voice_params
        return speak(
            planned.text, voice, "audio/pcm", 1.0, self._scenario.seed, planned.leading_silence_ms
        )

    def _new_call_id(self) -> str:
        self._call_seq += 1
        return f"function-call-{self.index}-{self._call_seq}"

    def _last_client_text(self) -> str | None:
        """A client-content user text turn just sent (``say exactly: ...`` is honoured)."""
        last = self.history.turns[-1] if self.history.turns else None
        if last is not None and last.role == "user" and last.source == "client_content":
            return last.text or None
        return None

    def _brain_items(self) -> list[Item]:
        return [item for n, turn in enumerate(self.history.turns) for item in _brain_items(n, turn)]

    def _close(self, code: int, reason: str) -> list[Outgoing]:
        self.closed = Close(code, reason)
        self.notes.append(f"closed {code}: {reason}")
        return [self.closed]

    def _send(self, message: dict[str, Any]) -> Send:
        if self._recording:
            self._record("out", self.server_messages, message)
        return Send(dumps(message))

    def _record_in(self, message: dict[str, Any]) -> None:
        if self._recording:
            self._record("in", self.client_messages, message)

    def _record(self, direction: str, into: deque[dict[str, Any]], message: dict[str, Any]) -> None:
        summary = _summarize(message)
        into.append(summary)
        if self._recorder is not None:
            self._recorder(direction, summary)


def _client_turn(turn: Any) -> HistoryTurn:
    if not isinstance(turn, dict):
        raise WireError("Invalid value at 'client_content.turns' (expected Content objects)")
    role: Role = "model" if turn.get("role") == "model" else "user"
    parts: list[HistoryPart] = []
    for part in field(turn, "parts") or []:
        if not isinstance(part, dict):
            continue
        call = mapping(part, "functionCall", "parts.function_call")
        result = mapping(part, "functionResponse", "parts.function_response")
        if isinstance(part.get("text"), str):
            parts.append(HistoryPart("text", part["text"]))
        elif call is not None:
            parts.append(
                HistoryPart(
                    "function_call",
                    call_id=call.get("id"),
                    name=call.get("name"),
                    args=call.get("args"),
                )
            )
        elif result is not None:
            parts.append(
                HistoryPart(
                    "function_response",
                    call_id=result.get("id"),
                    name=result.get("name"),
                    response=result.get("response"),
                )
            )
    return HistoryTurn(role, "client_content", parts)


def _output_text(response: dict[str, Any] | None) -> str:
    value: Any = response.get("output", response) if response else ""
    return value if isinstance(value, str) else json.dumps(value)


def _brain_items(n: int, turn: HistoryTurn) -> list[Item]:
    """The turn as the shared scenario brain reads conversations (OpenAI-shaped sim items)."""
    items: list[Item] = []
    role = "assistant" if turn.role == "model" else "user"
    if turn.text:
        kind = "output_text" if role == "assistant" else "input_text"
        items.append(
            Item(f"t{n}", "message", role=role, content=[{"type": kind, "text": turn.text}])
        )
    for k, part in enumerate(turn.parts):
        if part.kind == "function_call":
            items.append(
                Item(
                    f"t{n}c{k}",
                    "function_call",
                    call_id=part.call_id,
                    name=part.name,
                    arguments=json.dumps(part.args or {}),
                )
            )
        elif part.kind == "function_response":
            items.append(
                Item(
                    f"t{n}r{k}",
                    "function_call_output",
                    call_id=part.call_id,
                    output=_output_text(part.response),
                )
            )
    return items


def _summarize(value: Any) -> Any:
    """A copy of a message with base64 audio (``data`` next to a mime type) replaced by its
    byte count, so tests and logs hold no audio."""
    if isinstance(value, list):
        return [_summarize(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _summarize(v) for k, v in value.items()}
    data = out.get("data")
    if isinstance(data, str) and ("mimeType" in out or "mime_type" in out):
        out["data"] = b64_len(data)
    return out
