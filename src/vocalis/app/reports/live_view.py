"""The live transcript shown by `vocalis demo` and `vocalis run`.

Why: the heard contract is invisible unless someone shows it. This view prints each agent
message with its verdict — *played*, *interrupted at N ms*, *never played* — next to tool calls,
agent states and the latency of each turn, while the conversation happens.

The view is split in two so it can be tested without a terminal:
* `LiveTranscript` is a plain model fed by small methods (`user_said`, `agent_text`,
  `agent_message_ended`, `tool_started`, ...). It knows nothing about the runtime's event types;
  the command wires events to it.
* `render()` turns the model into a `rich` renderable; `LiveView` redraws it with `rich.live`
  when the output is a terminal and otherwise prints each finished line once (CI logs).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from vocalis.app.reports.timeline import unheard_part
from vocalis.utils.logsafe import terminal_safe


class Verdict(enum.Enum):
    PENDING = "pending"
    PLAYED = "played"
    INTERRUPTED = "interrupted"
    # Cut because the call ended (Ctrl-C, the caller hung up), not by the caller's speech.
    HUNG_UP = "cut by the hang-up"
    NEVER_PLAYED = "never played"


@dataclass(slots=True)
class AgentLine:
    item_id: str
    text: str = ""
    verdict: Verdict = Verdict.PENDING
    played_ms: float | None = None
    generated_text: str | None = None
    turn: int = 0

    def label(self) -> str:
        if self.verdict is Verdict.INTERRUPTED:
            return f"interrupted at {self.played_ms or 0:.0f} ms"
        if self.verdict is Verdict.HUNG_UP:
            return f"cut at {self.played_ms or 0:.0f} ms by the hang-up"
        if self.verdict is Verdict.PLAYED and self.played_ms is not None:
            return f"played ({self.played_ms:.0f} ms)"
        text: str = self.verdict.value
        return text


@dataclass(slots=True)
class UserLine:
    item_id: str
    text: str
    final: bool
    turn: int = 0


@dataclass(slots=True)
class ToolLine:
    call_id: str
    name: str
    arguments: str
    output: str | None = None
    is_error: bool = False
    turn: int = 0


@dataclass(slots=True)
class NoticeLine:
    message: str
    level: str = "info"


@dataclass(slots=True)
class LatencyLine:
    turn: int
    latency_ms: float


Line = AgentLine | UserLine | ToolLine | NoticeLine | LatencyLine

_STATE_STYLE = {"listening": "green", "thinking": "yellow", "speaking": "cyan"}
_VERDICT_STYLE = {
    Verdict.PENDING: "dim",
    Verdict.PLAYED: "green",
    Verdict.INTERRUPTED: "bold red",
    Verdict.HUNG_UP: "yellow",
    Verdict.NEVER_PLAYED: "magenta",
}


# Lines a transcript keeps (the live view shows the last 14; log mode prints each line once
# when it is final). A call lasts as long as its peers make it; its history file is the record.
DEFAULT_KEPT_LINES = 100


@dataclass(slots=True)
class LiveTranscript:
    """What the view shows, in arrival order; ids let late updates land on the right line.

    Bounded: it keeps the most recent `keep` lines (older ones are dropped, counted in
    `dropped`), and a late update for a dropped line's id is ignored rather than starting a
    new line. A transcript lives as long as its call, and `vocalis serve` holds one per call.
    """

    lines: list[Line] = field(default_factory=list)
    state: str = "idle"
    turn: int = 0
    title: str = "vocalis"
    _agent: dict[str, AgentLine] = field(default_factory=dict)
    _user: dict[str, UserLine] = field(default_factory=dict)
    _tools: dict[str, ToolLine] = field(default_factory=dict)
    # Lines already printed in non-interactive mode (index into `lines`).
    _flushed: int = 0
    # The call ended: a message cut from now on was cut by the hang-up, not a barge-in.
    hung_up: bool = False
    keep: int = DEFAULT_KEPT_LINES
    # Lines dropped to stay within `keep` (shown as one notice at the end of the view).
    dropped: int = 0
    # Ids of recently dropped lines (at most `keep`, oldest first), whose late updates are
    # ignored: one insertion-ordered dict is both the lookup and the age order.
    _forgotten: dict[str, None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.keep <= 0:
            raise ValueError("LiveTranscript.keep must be positive")

    # ------------------------------------------------------------------ updates
    def user_said(self, item_id: str, text: str, *, final: bool = True) -> None:
        if item_id in self._forgotten:
            return
        line = self._user.get(item_id)
        if line is None:
            self.turn += 1
            line = UserLine(item_id, text, final, self.turn)
            self._user[item_id] = line
            self._append(line)
        else:
            line.text = text
            line.final = final

    def agent_message(self, item_id: str) -> AgentLine:
        line = self._agent.get(item_id)
        if line is None:
            line = AgentLine(item_id, turn=self.turn)
            if item_id in self._forgotten:
                return line  # a late update of a dropped line: shown nowhere
            self._agent[item_id] = line
            self._append(line)
        return line

    def agent_text(self, item_id: str, text: str) -> None:
        """Words as their audio plays (append-only deltas)."""
        self.agent_message(item_id).text += text

    def agent_message_ended(
        self,
        item_id: str,
        *,
        interrupted: bool,
        played_ms: float | None,
        heard_text: str,
        generated_text: str | None = None,
    ) -> None:
        line = self.agent_message(item_id)
        line.text = heard_text
        line.played_ms = played_ms
        # The transport's verdict and the history item both report the end of a message, in
        # either order; only the history knows the generated text, so never erase it.
        if generated_text is not None:
            line.generated_text = generated_text
        if not interrupted:
            line.verdict = Verdict.PLAYED
        elif played_ms:
            line.verdict = Verdict.HUNG_UP if self.hung_up else Verdict.INTERRUPTED
        else:
            line.verdict = Verdict.NEVER_PLAYED

    def agent_message_generated(self, item_id: str, generated_text: str) -> None:
        """What the model generated for a message the caller never heard (from the turn
        metrics: such a message is deleted from the history, so no item carries its text)."""
        line = self._agent.get(item_id)
        if line is not None and line.generated_text is None:
            line.generated_text = generated_text

    def tool_started(self, call_id: str, name: str, arguments: str) -> None:
        if call_id not in self._tools and call_id not in self._forgotten:
            line = ToolLine(call_id, name, arguments, turn=self.turn)
            self._tools[call_id] = line
            self._append(line)

    def tool_finished(self, call_id: str, output: str, *, is_error: bool = False) -> None:
        if call_id in self._forgotten:
            return
        line = self._tools.get(call_id)
        if line is None:
            line = ToolLine(call_id, "?", "", turn=self.turn)
            self._tools[call_id] = line
            self._append(line)
        line.output = output
        line.is_error = is_error

    def agent_state(self, state: str) -> None:
        self.state = state

    def turn_latency(self, latency_ms: float) -> None:
        self._append(LatencyLine(self.turn, latency_ms))

    def notice(self, message: str, level: str = "info") -> None:
        self._append(NoticeLine(message, level))

    def _append(self, line: Line) -> None:
        """Add a line; past `keep`, drop the oldest (its id forgotten, its late updates too)."""
        self.lines.append(line)
        while len(self.lines) > self.keep:
            self._drop(self.lines.pop(0))

    def _drop(self, line: Line) -> None:
        self.dropped += 1
        self._flushed = max(0, self._flushed - 1)
        if isinstance(line, AgentLine | UserLine | ToolLine):
            key = line.call_id if isinstance(line, ToolLine) else line.item_id
            for table in (self._agent, self._user, self._tools):
                table.pop(key, None)
            self._forgotten[key] = None
            if len(self._forgotten) > self.keep:
                del self._forgotten[next(iter(self._forgotten))]

    # ------------------------------------------------------------------ queries
    def agent_lines(self) -> list[AgentLine]:
        return [line for line in self.lines if isinstance(line, AgentLine)]

    def finished(self, line: Line) -> bool:
        """A line that will not change any more (safe to print once in log mode)."""
        if isinstance(line, AgentLine):
            # A never-played message's text follows its verdict (in the same turn metrics).
            if line.verdict is Verdict.NEVER_PLAYED:
                return line.generated_text is not None
            return line.verdict is not Verdict.PENDING
        if isinstance(line, ToolLine):
            return line.output is not None
        if isinstance(line, UserLine):
            return line.final
        return True

    def take_finished(self) -> list[Line]:
        """Leading finished lines not yet taken (keeps the printed order = arrival order)."""
        taken: list[Line] = []
        while self._flushed < len(self.lines) and self.finished(self.lines[self._flushed]):
            taken.append(self.lines[self._flushed])
            self._flushed += 1
        return taken

    def take_rest(self) -> list[Line]:
        """Every line not yet taken, finished or not (the end of the conversation)."""
        rest = self.lines[self._flushed :]
        self._flushed = len(self.lines)
        return rest


# ---------------------------------------------------------------------- rendering
def _clip(text: str, limit: int = 160) -> str:
    # Transcripts, typed text and tool calls are peer-written: no terminal escapes.
    text = " ".join(terminal_safe(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_line(line: Line) -> Text:
    """One transcript line as styled text (shared by the live table and log mode)."""
    if isinstance(line, UserLine):
        out = Text.assemble(("caller  ", "bold blue"), (_clip(line.text) or "…", "blue"))
        if not line.final:
            out.append("  (hearing…)", "dim")
        return out
    if isinstance(line, AgentLine) and line.verdict is Verdict.NEVER_PLAYED:
        # Nothing was heard: the verdict first, then what the model had generated, struck.
        out = Text.assemble(("agent   ", "bold cyan"), (f"[{line.label()}]", "magenta"))
        if line.generated_text:
            out.append(f"  {_clip(line.generated_text, 60)}", "dim strike")
        return out
    if isinstance(line, AgentLine):
        out = Text.assemble(("agent   ", "bold cyan"), (_clip(line.text) or "…", ""))
        out.append(f"  [{line.label()}]", _VERDICT_STYLE[line.verdict])
        if line.verdict in (Verdict.INTERRUPTED, Verdict.HUNG_UP) and line.generated_text:
            unheard = unheard_part(line.text, line.generated_text)
            if unheard:
                out.append(f"  unheard: {_clip(unheard, 60)}", "dim strike")
        return out
    if isinstance(line, ToolLine):
        call = _clip(f"{line.name}({line.arguments})", 400)
        out = Text.assemble(("tool    ", "bold yellow"), (call, ""))
        if line.output is None:
            out.append("  running…", "dim")
        else:
            style = "red" if line.is_error else "green"
            out.append(f"  → {_clip(line.output, 80)}", style)
        return out
    if isinstance(line, LatencyLine):
        return Text(
            f"        turn {line.turn}: {line.latency_ms:.0f} ms to first played audio", "dim"
        )
    style = {"error": "bold red", "warning": "yellow"}.get(line.level, "dim")
    return Text(f"        {line.message}", style)


def render(model: LiveTranscript, *, last: int = 14) -> RenderableType:
    """The whole view: recent lines plus a status row with the agent state."""
    table = Table.grid(padding=(0, 1))
    table.add_column()
    for line in model.lines[-last:]:
        table.add_row(render_line(line))
    state_style = _STATE_STYLE.get(model.state, "white")
    status = Text.assemble(
        (f" {model.title} ", "bold reverse"),
        "  agent: ",
        (model.state, f"bold {state_style}"),
        f"  turn {model.turn}",
    )
    return Group(table, status)


class LiveView:
    """Draws a `LiveTranscript` live on a terminal, or as plain lines elsewhere.

    Use as a context manager; call `refresh()` after updating the model (cheap: rich throttles
    redraws itself). In log mode each line is printed once when it is final, so CI output stays
    readable and complete.
    """

    def __init__(self, model: LiveTranscript, console: Console | None = None) -> None:
        self.model = model
        self.console = console or Console()
        self._live: Live | None = None

    @property
    def interactive(self) -> bool:
        return self.console.is_terminal and not self.console.is_dumb_terminal

    def __enter__(self) -> LiveView:
        if self.interactive:
            self._live = Live(
                render(self.model), console=self.console, refresh_per_second=8, transient=True
            )
            self._live.__enter__()
        return self

    def refresh(self) -> None:
        if self._live is not None:
            self._live.update(render(self.model))
            return
        finished = self.model.take_finished()
        if self.console.quiet:  # `--quiet`: nothing shown, nothing to render
            return
        for line in finished:
            self.console.print(render_line(line))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # The final transcript stays on screen (its last `keep` lines) and in logs (each
        # line once, as it became final).
        rest = self.model.take_rest()
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)
            self._live = None
            rest = list(self.model.lines)
            if self.model.dropped:
                earlier = f"({self.model.dropped} earlier lines not kept; see the history file)"
                self.console.print(Text(f"        {earlier}", "dim"))
        for line in rest:
            self.console.print(render_line(line))
