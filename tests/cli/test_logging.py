"""`--log-level` / `-v` / `--quiet` / `--log-format` and the records they produce: each record
carries the call it belongs to (also from tasks started inside the call), JSON lines carry any
field other parts add (trace ids), and secrets in a library's debug line are redacted."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from vocalis.app.logs import chosen_level, cli_logging
from vocalis.cli import COMMANDS, build_parser, main
from vocalis.utils.logcontext import bind_call, current_call


def _args(*argv: str):  # type: ignore[no-untyped-def]
    return build_parser("run").parse_args(["run", "agent.py", "--input", "x.wav", *argv])


@pytest.mark.parametrize(
    ("argv", "level"),
    [
        ((), logging.WARNING),
        (("-v",), logging.INFO),
        (("-vv",), logging.DEBUG),
        (("--quiet",), logging.ERROR),
        (("--quiet", "--log-level", "INFO"), logging.INFO),  # an explicit level wins
        (("-vv", "--log-level", "error"), logging.ERROR),
    ],
)
def test_levels_from_flags(argv: tuple[str, ...], level: int) -> None:
    assert chosen_level(_args(*argv)) == level


def test_the_level_defaults_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOCALIS_LOG_LEVEL", "DEBUG")
    assert chosen_level(_args()) == logging.DEBUG


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_takes_the_logging_flags(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "--log-level" in capsys.readouterr().out


async def test_text_records_name_the_call_even_from_tasks_started_inside_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # cli_logging restores the root and "vocalis" levels afterwards: a level left behind
    # would silence later tests' DEBUG records (the handshake-redaction test reads them).
    with cli_logging(_args("-v")):
        log = logging.getLogger("vocalis.test")

        async def in_a_task() -> None:
            log.warning("inside %s", "task")

        with bind_call(call=3, transport="twilio"):
            assert current_call() == {"call": "3", "transport": "twilio"}
            task = asyncio.get_running_loop().create_task(in_a_task())
        assert current_call() == {}
        await task
        log.info("outside")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].endswith("WARNING call=3 transport=twilio vocalis.test: inside task")
    assert lines[1].endswith("INFO vocalis.test: outside")


def test_json_records_carry_the_call_extra_fields_and_the_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with cli_logging(_args("--log-format", "json")):
        log = logging.getLogger("vocalis.test")
        with bind_call(call=7):
            try:
                raise RuntimeError("boom")
            except RuntimeError:
                log.exception("tool failed", extra={"otelTraceID": "abc123"})
        logging.getLogger("websockets.client").warning("> %s: %s", "Authorization", "Bearer sk-1")
    first, second = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert first["level"] == "ERROR" and first["message"] == "tool failed"
    assert first["call"] == "7" and first["otelTraceID"] == "abc123"
    assert "RuntimeError: boom" in first["exception"]
    assert "sk-1" not in second["message"] and "<redacted>" in second["message"]


async def test_an_untranscribed_offline_turn_is_not_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The sim cannot transcribe speech without a scripted transcript: every offline spoken
    turn used to print `input transcription failed ... (audio_unintelligible)`."""
    from vocalis import Agent
    from vocalis.testing import AgentTest

    with caplog.at_level(logging.INFO, logger="vocalis"):
        async with AgentTest(Agent("x"), scenario={"responses": [{"say": "Hi."}]}) as call:
            await call.user_speaks("Hello there")
    unintelligible = [r for r in caplog.records if "no words" in r.getMessage()]
    assert unintelligible and all(r.levelno == logging.INFO for r in unintelligible)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
