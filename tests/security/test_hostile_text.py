"""Peer-chosen text: numbers, event types, terminal escapes (issue #14, items 6, 7 and 8).

* A Twilio number field of "²" passed `str.isdigit()`, then `int()` raised: the call closed
  1011 with a traceback and counted a false `call_failed`. Full-width digits were read as
  numbers no Twilio server sends.
* The provider's warning limiter was keyed on the event type the server chose: 100,000
  made-up types gave 100,000 warning lines and a dict that never shrank.
* Typed playground text and provider transcripts reached the operator's terminal raw
  (title change, screen clear, right-to-left override).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import IO

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from serve_support import kill_if_running, read_until, start_serve
from vocalis.providers.openai.formats import audio_format
from vocalis.providers.openai.protocol import OpenAIProtocol
from vocalis.transports.twilio import (
    TwilioProtocolError,
    TwilioTransport,
    parse_message,
    serve_twilio,
)
from vocalis.utils.logsafe import WarnLimiter, terminal_safe
from vocalis.worker import Worker

QUIET = logging.getLogger("tests.security.text.client")
QUIET.propagate = False


# --------------------------------------------------------------------------- item 6


@pytest.mark.parametrize("number", ["²", "３", "١٢", "1²", "-1", " 1", "1" * 13])
def test_twilio_numbers_are_ascii_digits_only(number: str) -> None:
    media = {"event": "media", "media": {"payload": "AAAA", "chunk": number}}
    with pytest.raises(TwilioProtocolError, match="must be a number"):
        parse_message(json.dumps(media))


async def test_a_superscript_digit_closes_the_stream_as_a_protocol_error() -> None:
    async def on_call(transport: TwilioTransport) -> None:
        await transport.wait_closed()

    async with Worker() as worker:
        endpoint = await serve_twilio(on_call, port=0, token="tok-ascii-1", gate=worker)
        async with endpoint, connect(endpoint.url, logger=QUIET) as ws:
            start = {"event": "start", "streamSid": "MZ1", "start": {"streamSid": "MZ1"}}
            await ws.send(json.dumps(start))
            media = {"event": "media", "media": {"payload": "AAAA", "chunk": "²"}}
            await ws.send(json.dumps(media))
            with pytest.raises(ConnectionClosed) as info:
                while True:
                    await asyncio.wait_for(ws.recv(), 10)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1008
        assert "number" in info.value.rcvd.reason
        assert worker.errors.counts["call_failed"] == 0


# --------------------------------------------------------------------------- item 7


def test_unknown_event_types_share_one_warning_budget(caplog: pytest.LogCaptureFixture) -> None:
    protocol = OpenAIProtocol(audio_format=audio_format("pcm16"))
    with caplog.at_level(logging.WARNING):
        for n in range(20_000):
            protocol.receive({"type": f"made.up.{n}"})
    unknown = [r for r in caplog.records if "unknown server event" in r.getMessage()]
    assert 1 <= len(unknown) <= 3


def test_the_warning_limiter_caps_its_keys(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.security.limiter")
    limiter = WarnLimiter(logger, burst=2, max_keys=10, now=lambda: 0.0)
    with caplog.at_level(logging.WARNING, logger=logger.name):
        for n in range(50_000):
            limiter.warn(f"key-{n}", "warning %d", n)
    # One line for each of the first 10 keys, then every further key shares the budget
    # (2) of one "other" key.
    assert len(caplog.records) == 10 + 2


# --------------------------------------------------------------------------- item 8

UNSAFE = "\x1b]0;pwned\x07\x1b[2J\x1b[8m\u202ehidden\r\x9b31m\x00\u2066"


@given(st.text())
def test_terminal_safe_leaves_no_control_characters(text: str) -> None:
    safe = terminal_safe(text)
    assert not re.search(
        "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]", safe
    )
    assert terminal_safe(safe) == safe


def test_terminal_safe_keeps_ordinary_text() -> None:
    text = "Café, 東京, emoji 🎉, tab\tnewline\nend"
    assert terminal_safe(text) == text
    assert terminal_safe(UNSAFE) == "]0;pwned[2J[8mhidden31m"


def test_typed_escapes_never_reach_the_operators_terminal() -> None:
    """`vocalis serve --playground` (offline): what the operator's console shows of a typed
    message, and of the agent's reply to it, carries no escape or bidi control."""
    proc = start_serve(
        "examples/minimal_agent.py:agent", "--playground", "--port", "0", "--offline"
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        url = read_until(proc.stdout, r"open (http://\S+)", lines).group(1)
        read_until(proc.stdout, r"Ctrl-C to stop", lines)
        asyncio.run(type_into_playground(url, "hello " + UNSAFE + " marker", proc.stdout, lines))
        read_until(proc.stdout, r"call 1.* ended", lines)
    finally:
        proc.terminate()
        proc.wait(30)
        kill_if_running(proc)
    shown = "".join(lines)
    assert "hello" in shown and "hidden" in shown
    assert terminal_safe(shown) == shown, repr(shown[-400:])


async def type_into_playground(url: str, text: str, stdout: IO[str], lines: list[str]) -> None:
    host = url.split("/")[2]
    token = url.split("token=")[1]
    origin = f"http://{host}"
    async with connect(f"ws://{host}/ws?token={token}", origin=origin, logger=QUIET) as ws:  # type: ignore[arg-type]
        assert json.loads(await ws.recv())["type"] == "hello"
        await ws.send(json.dumps({"type": "ready"}))
        await ws.send(json.dumps({"type": "text", "text": text}))
        await asyncio.to_thread(read_until, stdout, r"caller .*marker", lines)
        await ws.send(json.dumps({"type": "hangup"}))
