"""What `vocalis demo` does once its arguments are parsed (see `vocalis.app.cli.demo`).

The demo is also a self-check: after the conversation it verifies the things it claims to show
— the tool was called and answered, the preamble and the answer were played, the barge-in
left an interrupted message whose heard part is shorter than what was generated, and the
embedded server's copy of that message was truncated to the same point — and exits 1 with the
reason when any of that did not happen.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from vocalis.app.conversation import ConversationRecord, agent_idle, converse
from vocalis.app.demo_agent import make_agent
from vocalis.app.endpoint import GEMINI_DEFAULT_MODEL, Endpoint
from vocalis.app.errors import EXIT_FAILED, UsageError
from vocalis.app.reports.live_feed import ViewTextSink
from vocalis.app.reports.live_view import LiveTranscript, LiveView
from vocalis.app.reports.outputs import write_call_files
from vocalis.runtime.session import AgentSession
from vocalis.sim.caller import CallerScript, SimulatedCaller
from vocalis.sim.caller_transport import CallerTransport
from vocalis.utils.clock import MonotonicClock

SCRIPT_PATH = Path(__file__).with_name("demo_script.yaml")


@dataclass(slots=True)
class DemoScript:
    scenario: dict[str, Any]
    caller: CallerScript

    @classmethod
    def load(cls, path: Path = SCRIPT_PATH, *, barge_in_ms: float | None = None) -> DemoScript:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        caller = CallerScript.from_data(data["caller"])
        if barge_in_ms is not None:
            caller.lines = [
                line if line.barge_in_after_ms is None else type(line)(line.text, barge_in_ms)
                for line in caller.lines
            ]
        return cls(data["scenario"], caller)


@dataclass(slots=True)
class ServerView:
    """The provider side after the call: the sim-server's final conversation items."""

    items: list[dict[str, Any]] = field(default_factory=list)
    # Gemini: (role, text) of every turn the session serving the call at its end holds.
    gemini_texts: list[tuple[str, str]] | None = None

    def capture(self, server: Any) -> None:
        for session in server.sessions:
            self.items += [item.summary() for item in session.conversation.items]
        if any(dialect.name == "gemini" for dialect in server.dialects):
            from vocalis.sim.gemini import sessions_of

            connections = sessions_of(server).connections
            history = connections[-1].session.history if connections else None
            self.gemini_texts = list(history.texts()) if history is not None else []


def check(history: dict[str, Any], server: ServerView, caller_problems: list[str]) -> list[str]:
    """What the demo promises, verified on the outputs; returns the failures."""
    failures = list(caller_problems)
    items = [i for i in history.get("items", []) if isinstance(i, dict)]
    calls = [i for i in items if i.get("type") == "function_call"]
    outputs = {i.get("call_id") for i in items if i.get("type") == "function_call_output"}
    agent = [i for i in items if i.get("type") == "message" and i.get("role") == "assistant"]
    if not any(c.get("name") == "get_weather" for c in calls):
        failures.append("the agent never called get_weather")
    for call in calls:
        if call.get("call_id") not in outputs:
            failures.append(f"tool call {call.get('call_id')} has no output in the history")
    played = [m for m in agent if not m.get("interrupted")]
    if len(played) < 3:
        failures.append(f"expected at least 3 fully played agent messages, got {len(played)}")
    cut = [m for m in agent if m.get("interrupted") and (m.get("played_ms") or 0) > 0]
    if not cut:
        failures.append("no agent message was interrupted by the barge-in")
    by_id = {i.get("id"): i for i in server.items}
    for message in cut:
        played_ms = float(message.get("played_ms") or 0)
        generated = message.get("generated_ms")
        if generated is not None and played_ms >= float(generated):
            failures.append(f"{message['id']}: heard {played_ms} ms is not less than generated")
        if not server.items:
            continue
        remote = by_id.get(message.get("id"))
        if remote is None:
            failures.append(f"{message['id']} is missing on the server")
        elif remote.get("truncated_at_ms") is None:
            failures.append(f"{message['id']} was not truncated on the server")
        elif abs(float(remote["truncated_at_ms"]) - played_ms) > 1.0:
            failures.append(
                f"{message['id']}: server truncated at {remote['truncated_at_ms']} ms, "
                f"caller heard {played_ms:.0f} ms"
            )
    if server.gemini_texts is not None:
        failures += check_gemini(agent, server.gemini_texts)
    for item_id in never_played(history):
        if item_id in {i.get("id") for i in items}:
            failures.append(f"{item_id} was never played but is in the history")
        if item_id in by_id:
            failures.append(f"{item_id} was never played but the server still has it")
    return failures


def check_gemini(agent: list[dict[str, Any]], service: list[tuple[str, str]]) -> list[str]:
    """Gemini cannot truncate: after the heard checkpoint the service must hold each cut
    message as heard (its unheard words gone), in a re-seeded session."""
    failures = []
    model_texts = [text for role, text in service if role == "model"]
    for message in agent:
        text = str(message.get("text") or "")
        if message.get("interrupted") and text and text not in model_texts:
            failures.append(f"{message.get('id')}: the Gemini session does not hold {text!r}")
        generated = message.get("generated_text")
        if message.get("interrupted") and generated and generated in model_texts:
            failures.append(f"{message.get('id')}: the Gemini session still holds unheard words")
    return failures


def never_played(history: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Messages generated but not heard at all, by item id (from the turn metrics: the
    history itself no longer has them)."""
    found: dict[str, dict[str, Any]] = {}
    for turn in history.get("metrics", []):
        for message in turn.get("messages", []) if isinstance(turn, dict) else []:
            # A text-only message has no audio to play: "full" means its text was shown.
            if (
                isinstance(message, dict)
                and not message.get("played_ms")
                and message.get("playout") != "full"
            ):
                found[str(message.get("item_id"))] = message
    return found


def run_demo(args: argparse.Namespace) -> int:
    console = Console(highlight=False)
    if args.quiet:
        console = Console(quiet=True)
    started = time.monotonic()
    script = DemoScript.load(barge_in_ms=args.barge_in_ms)
    clock = MonotonicClock()
    model = LiveTranscript(title="vocalis demo")
    view = LiveView(model, console)
    holder: list[AgentSession] = []
    caller = SimulatedCaller(
        script.caller.lines,
        clock=clock,
        agent_idle=lambda: bool(holder) and agent_idle(holder[0], transport.audio_out),
    )
    transport = CallerTransport(caller, clock, text_sink=ViewTextSink(model, view.refresh))
    server = ServerView()
    gemini = getattr(args, "provider", "openai") == "gemini"
    endpoint = Endpoint(
        "embedded",
        None,
        GEMINI_DEFAULT_MODEL if gemini else "gpt-realtime",
        None,
        pace=args.pace,
        provider="gemini" if gemini else "openai",
    )
    Console(highlight=False).print(
        f"[bold]vocalis demo[/bold] — {endpoint.describe()}, a weather agent with a tool, "
        "and a simulated caller who interrupts the second answer"
    )
    with view:
        record = asyncio.run(
            converse(
                make_agent(),
                endpoint,
                transport,
                clock=clock,
                view=view,
                scenario=script.scenario,
                inspect_server=server.capture,
                on_state=caller.on_agent_state,
                on_session=holder.append,
                max_seconds=args.max_seconds,
            )
        )
    out: Path = args.out
    paths = write_outputs(out, record, transport, caller, title="vocalis demo")
    failures = check(record.history, server, caller.problems)
    if record.timed_out:
        failures.insert(0, f"the demo did not finish within {args.max_seconds:.0f} s")
    failures += [f"session error: {message}" for message in record.errors]
    return report(failures, record, paths, time.monotonic() - started)


def write_outputs(
    out: Path,
    record: ConversationRecord,
    transport: CallerTransport,
    caller: SimulatedCaller,
    *,
    title: str,
) -> dict[str, Path]:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {out}: {exc.strerror}") from exc
    paths = {
        "recording": out / "conversation.wav",
        "history": out / "history.json",
        "events": out / "events.jsonl",
        "timeline": out / "timeline.html",
    }
    transport.recorder.write(paths["recording"])
    offset_ms = ((caller.origin or record.origin) - record.origin) * 1000.0
    spans = [(u.start_ms + offset_ms, u.end_ms + offset_ms) for u in caller.utterances]
    write_call_files(
        record.history,
        record.events,
        history_path=paths["history"],
        events_path=paths["events"],
        timeline_path=paths["timeline"],
        title=title,
        caller_speech_ms=spans,
    )
    return paths


def report(
    failures: list[str], record: ConversationRecord, paths: dict[str, Path], seconds: float
) -> int:
    console = Console(highlight=False)
    agent = [
        i
        for i in record.history.get("items", [])
        if i.get("type") == "message" and i.get("role") == "assistant"
    ]
    for message in agent:
        if message.get("interrupted"):
            console.print(
                f"[red]✂[/red] barge-in: {message['id']} heard {message.get('played_ms', 0):.0f} ms"
                f" of {message.get('generated_ms') or 0:.0f} ms generated; history keeps "
                f"“{message.get('text', '')}”"
            )
    for item_id, message in never_played(record.history).items():
        console.print(
            f"[magenta]∅[/magenta] never played: {item_id} "
            f"({message.get('generated_ms') or 0:.0f} ms generated) is in neither the history "
            "nor the model's memory"
        )
    console.print(f"wrote {', '.join(str(p) for p in paths.values())}")
    if failures:
        for failure in failures:
            console.print(f"[bold red]✗[/bold red] {failure}")
        console.print(f"[bold red]demo failed[/bold red] after {seconds:.1f} s")
        return EXIT_FAILED
    console.print(
        f"[bold green]✓ demo passed[/bold green] in {seconds:.1f} s — open "
        f"{paths['timeline']} to see generated vs heard"
    )
    return 0
