"""What `vocalis console` does once its arguments are parsed (see `vocalis.app.cli.console`).

The local audio devices are opened before anything connects, so a machine without a
microphone (or without the optional `sounddevice` package) gets one line and exit code 2.
Ctrl-C ends the call; the final transcript stays on screen.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from rich.console import Console

from vocalis.app.agent_ref import load_agent
from vocalis.app.conversation import WithTextSink, converse
from vocalis.app.endpoint import Endpoint, choose_endpoint
from vocalis.app.errors import UsageError
from vocalis.app.reports.live_feed import ViewTextSink
from vocalis.app.reports.live_view import LiveTranscript, LiveView
from vocalis.runtime.agent import Agent
from vocalis.transports.console import ConsoleAudioUnavailable, ConsoleTransport
from vocalis.utils.clock import MonotonicClock


def _device(value: str | None) -> int | str | None:
    """sounddevice takes a device index or a (partial) name."""
    if value is None:
        return None
    return int(value) if value.isascii() and value.isdigit() else value


async def _talk(agent: Agent, endpoint: Endpoint, device: ConsoleTransport, view: LiveView) -> None:
    try:
        await device.start()
    except ConsoleAudioUnavailable as exc:
        raise UsageError(str(exc)) from exc
    transport = WithTextSink(device, ViewTextSink(view.model, view.refresh))
    # Until the caller hangs up (Ctrl-C): no deadline, nothing more to wait for after it.
    await converse(
        agent,
        endpoint,
        transport,
        clock=device.clock,
        view=view,
        max_seconds=None,
        until_idle=False,
    )


def console_command(args: argparse.Namespace) -> int:
    endpoint = choose_endpoint(args)
    agent = load_agent(args.agent_ref)
    try:
        device = ConsoleTransport(
            MonotonicClock(),
            input_device=_device(args.input_device),
            output_device=_device(args.output_device),
        )
    except ConsoleAudioUnavailable as exc:
        raise UsageError(str(exc)) from exc
    console = Console(highlight=False)
    console.print(f"talking to {args.agent_ref} on {endpoint.describe()} — Ctrl-C to hang up")
    view = LiveView(LiveTranscript(title="vocalis console"), console)
    with view, contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_talk(agent, endpoint, device, view))
    return 0
