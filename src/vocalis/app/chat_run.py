"""What `vocalis chat` does once its arguments are parsed (see `vocalis.app.cli.chat`).

One `AgentSession` on a `TextTransport`: each line the user types becomes a text message, and
the next prompt appears only once the agent is done with it (answered, tools finished). Lines
are read by a daemon thread, so Ctrl-C ends the chat at once even while waiting for input, and
the history is still written (what was said so far).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading

from rich.console import Console
from rich.text import Text

from vocalis.app.agent_ref import load_agent
from vocalis.app.conversation import ConversationRecord, make_model, open_endpoint, start_call
from vocalis.app.endpoint import Endpoint, choose_endpoint
from vocalis.app.errors import EXIT_FAILED, UsageError
from vocalis.app.reports.outputs import write_call_files
from vocalis.app.terminal import make_console
from vocalis.conversation.items import FunctionCallItem, FunctionCallOutputItem
from vocalis.runtime.agent import Agent
from vocalis.runtime.context import answered, wait_until
from vocalis.runtime.events import (
    ConversationItemAdded,
    ErrorEvent,
)
from vocalis.runtime.session import AgentSession
from vocalis.transports.text import TextTransport
from vocalis.utils.clock import MonotonicClock
from vocalis.utils.logcontext import bind_call

QUIT = ("/quit", "/exit")
DEFAULT_TURN_TIMEOUT_S = 60.0
PROMPT = "you › "


class StdinLines:
    """Lines of stdin on the event loop, read by a daemon thread (None at end of input)."""

    def __init__(self, prompt: str | None) -> None:
        self._prompt = prompt
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._wanted = threading.Semaphore(0)
        threading.Thread(target=self._read, name="vocalis-chat-stdin", daemon=True).start()

    def _read(self) -> None:
        while True:
            self._wanted.acquire()  # prompt only when the chat asks for the next line
            try:
                line: str | None = input(self._prompt) if self._prompt else sys.stdin.readline()
            except EOFError:
                line = None
            if line == "":  # readline() at end of input
                line = None
            self._loop.call_soon_threadsafe(self._queue.put_nowait, line)
            if line is None:
                return

    async def next(self) -> str | None:
        self._wanted.release()
        return await self._queue.get()


class ChatPrinter:
    """History items → lines, in conversation order: the agent's messages, its tool calls and
    their results (so a preamble shows before the call it announced), and errors."""

    def __init__(self, out: Console, errors: Console, *, echo_user: bool) -> None:
        self.out = out
        self.errors = errors
        self.echo_user = echo_user

    def attach(self, session: AgentSession) -> None:
        session.on(ConversationItemAdded, self._item)
        session.on(ErrorEvent, self._error)

    def _item(self, event: ConversationItemAdded) -> None:
        item = event.item
        if isinstance(item, FunctionCallItem):
            self.out.print(Text(f"  tool {item.name}({item.arguments})", style="dim"))
        elif isinstance(item, FunctionCallOutputItem):
            style = "red" if item.is_error else "dim"
            self.out.print(Text(f"    → {item.output}", style=style))
        elif not item.text:
            return
        elif item.role == "assistant":
            self.out.print(Text.assemble(("agent › ", "bold cyan"), item.text))
        elif item.role == "user" and self.echo_user:
            self.out.print(Text.assemble((PROMPT, "bold"), item.text))

    def _error(self, event: ErrorEvent) -> None:
        level = "warning" if event.recoverable else "error"
        self.errors.print(f"vocalis chat: {level}: {event.message}")


async def _send(
    session: AgentSession, transport: TextTransport, text: str, timeout_s: float
) -> None:
    """Send one message and return once the agent has answered it (and its tools ran)."""
    known = {item.id for item in session.history}
    transport.send(text)
    await wait_until(session, lambda: answered(session, known), timeout_s)


async def _next_line(lines: StdinLines, transport: TextTransport) -> str | None:
    """The next typed line, or None at the end of input or when the agent hung up."""
    await asyncio.sleep(0)  # a hang-up requested by the last turn's tool runs first
    if transport.closed:
        return None
    line = asyncio.ensure_future(lines.next())
    closed = asyncio.ensure_future(transport.wait_closed())
    await asyncio.wait({line, closed}, return_when=asyncio.FIRST_COMPLETED)
    closed.cancel()
    if line.done():
        return line.result()
    line.cancel()
    return None


async def _chat(
    agent: Agent, endpoint: Endpoint, timeout_s: float, record: ConversationRecord
) -> None:
    interactive = sys.stdin.isatty()
    out, errors = make_console(), make_console(stderr=True)
    transport = TextTransport()
    clock = MonotonicClock()
    async with open_endpoint(endpoint) as (url, api_key):
        call = await start_call(
            make_model(endpoint, url, api_key),
            agent,
            transport,
            clock=clock,
            endpoint=endpoint,
            transcription_model=None,
        )
        record.origin = call.recorder.origin
        session = call.session
        ChatPrinter(out, errors, echo_user=not interactive).attach(session)
        lines = StdinLines(PROMPT if interactive else None)
        try:
            if agent.greeting:  # said at start: show it before the first prompt
                await wait_until(session, lambda: answered(session), timeout_s)
            while (line := await _next_line(lines, transport)) is not None:
                text = line.strip()
                if text in QUIT:
                    break
                if not text:
                    continue
                try:
                    await _send(session, transport, text, timeout_s)
                except TimeoutError:
                    errors.print(f"vocalis chat: no answer within {timeout_s:g} s")
                    record.timed_out = True
                    break
            if transport.closed:
                out.print(Text("(the agent ended the call)", style="dim"))
        finally:
            await call.finish(record)


def chat_command(args: argparse.Namespace) -> int:
    endpoint = choose_endpoint(args, default_pace=0.0)
    agent = load_agent(args.agent_ref)
    # `vocalis console --text` comes here too, without chat's own flags.
    timeout_s = getattr(args, "turn_timeout", DEFAULT_TURN_TIMEOUT_S)
    if timeout_s <= 0:
        raise UsageError(f"--turn-timeout must be positive, got {timeout_s:g}")
    status = make_console(stderr=True)
    status.print(f"vocalis chat {args.agent_ref} → {endpoint.describe()}")
    if sys.stdin.isatty():
        status.print("Enter sends a message; /quit, Ctrl-D or Ctrl-C ends the chat")
    record = ConversationRecord()
    interrupted = False
    try:
        with bind_call(call="chat"):
            asyncio.run(_chat(agent, endpoint, timeout_s, record))
    except KeyboardInterrupt:
        interrupted = True  # the session was closed in _chat's finally: the record is whole
    written = write_call_files(
        record.history,
        record.events,
        history_path=getattr(args, "history", None),
        events_path=getattr(args, "events", None),
        title=f"vocalis chat {args.agent_ref}",
    )
    if written:
        status.print(f"wrote {', '.join(str(p) for p in written)}")
    if record.errors:
        status.print(f"vocalis chat: error: {record.errors[0]}")
        return EXIT_FAILED
    if record.timed_out:
        return EXIT_FAILED
    return 130 if interrupted else 0
