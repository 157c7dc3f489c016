"""`vocalis.utils.event_loop`: run uses uvloop when installed; serve asyncio unless asked."""

from __future__ import annotations

import asyncio

import pytest

from vocalis.utils import event_loop


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_uvloop_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(event_loop.LOOP_ENV, raising=False)
    assert event_loop.loop_kind() == "uvloop"  # the `fast` extra is part of the dev setup
    assert event_loop.run(_loop_module()).startswith("uvloop")


def test_asyncio_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(event_loop.LOOP_ENV, "asyncio")
    assert event_loop.loop_kind() == "asyncio"
    assert event_loop.run(_loop_module()).startswith("asyncio")


def test_a_wrong_choice_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(event_loop.LOOP_ENV, "tokio")
    with pytest.raises(ValueError, match="auto, uvloop or asyncio"):
        event_loop.loop_kind()


def test_serve_prefers_asyncio_unless_uvloop_is_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    """`vocalis serve` passes auto="asyncio": its accept pause needs asyncio's Server."""
    monkeypatch.delenv(event_loop.LOOP_ENV, raising=False)
    assert event_loop.loop_kind(auto="asyncio") == "asyncio"
    monkeypatch.setenv(event_loop.LOOP_ENV, "uvloop")
    assert event_loop.loop_kind(auto="asyncio") == "uvloop"
