"""A provider cannot make a call hold more responses than it plays (issue #14, per-call bound).

A Gemini service sending empty turns (a caller transcript character, then a complete
one-character model turn) made `vocalis run` peak at +130 MB over an idle call with the item
bound not reached: every model turn became a response whose run (its tasks, streams and sink
segment, ~25 KB) waited to play, 5,000 of them at once. Closing that call then took seconds
per socket: the client's reader stopped before the close, so the flooding peer's frames —
and its answer to the close — were never read, and a checkpoint during the close opened a
new socket (flooded again) that nobody closed.
"""

from __future__ import annotations

import asyncio

from bench.attacks import _run_call
from bench.common import REPO
from bench.hostile import HostileGemini, gemini_empty_items

from vocalis.conversation.items import MessageItem
from vocalis.providers.base import GenerationStarted, SessionOptions
from vocalis.providers.gemini import GeminiRealtimeModel
from vocalis.runtime.budget import DEFAULT_BUDGET


async def test_a_flood_of_responses_ends_vocalis_run_at_the_open_response_bound() -> None:
    """1,000 model turns, far below the item bound: only the open-response bound ends the
    call (before it, the call sat to its deadline with every response queued)."""
    service = HostileGemini(gemini_empty_items(2000))
    async with service.serving() as url:
        run = await _run_call(REPO / "src", url, "--provider", "gemini", max_seconds=30, caller_s=3)
    assert run.code == 1, run.text
    assert run.ended_on == "response_budget", run.text
    assert "CallBudget.max_open_responses" in run.text
    # Each caller turn is in the history, but no more model turns than the bound allowed.
    assert run.history_items is not None
    assert run.history_items <= 2 * DEFAULT_BUDGET.max_open_responses + 1000


async def test_closing_under_a_flood_answers_the_close_and_leaves_no_socket_open() -> None:
    """The client closes while the service floods and a re-seed checkpoint is under way:
    every socket the service saw is closed by a completed close handshake (1000), none is
    dropped (1006: the client gave up waiting for an answer it never read) or left open."""
    service = HostileGemini(gemini_empty_items(200_000))
    async with service.serving() as base_url:
        model = GeminiRealtimeModel(api_key="test-hostile-key", base_url=base_url, reconnect=False)
        session = await model.connect(SessionOptions())
        async with asyncio.timeout(30):
            async for event in session.events():  # the flood runs: model turns came in
                if isinstance(event, GenerationStarted):
                    break
            # Unheard model turns: the heard checkpoint re-seeds on a new socket, and the
            # session closes while that switch is under way.
            service.connection_opened.clear()
            checkpoint = asyncio.create_task(session.sync_history([MessageItem("u1", "user")]))
            opened = asyncio.create_task(service.connection_opened.wait())
            await asyncio.wait({checkpoint, opened}, return_when=asyncio.FIRST_COMPLETED)
            opened.cancel()
            await session.aclose()
            await checkpoint
            while len(service.close_codes) < service.connections:
                service.connection_ended.clear()
                await service.connection_ended.wait()
    assert service.connections == 2  # the checkpoint did switch sockets
    assert service.close_codes == [1000, 1000]
