"""`Channel` forwarding: the synchronous hand-over the playout uses for provider audio.

Playout relies on three properties: queued items reach the callback before later sends (no
reordering of audio chunks), a consumer awaiting the end still wakes on close (otherwise a
response hangs in "speaking"), and a failing callback ends the stream with its error instead
of raising into the producer (the provider's receive loop).
"""

from __future__ import annotations

import asyncio

import pytest

from vocalis.utils.channel import Channel, ChannelClosed


async def test_forward_delivers_queued_items_first_then_sends_in_order() -> None:
    channel: Channel[int] = Channel()
    channel.send(1)
    channel.send(2)
    got: list[int] = []
    channel.forward_to(got.append)
    assert got == [1, 2]
    assert len(channel) == 0
    channel.send(3)
    channel.send(4)
    assert got == [1, 2, 3, 4]  # synchronously, inside send()
    assert len(channel) == 0


async def test_close_wakes_a_forwarding_consumer() -> None:
    channel: Channel[int] = Channel()
    got: list[int] = []
    channel.forward_to(got.append)
    waiter = asyncio.create_task(channel.wait_closed())
    await asyncio.sleep(0)
    assert not waiter.done()
    channel.send(7)
    await asyncio.sleep(0)
    assert not waiter.done()
    channel.close()
    await waiter
    assert got == [7]
    channel.send(8)  # late item after close: dropped, not forwarded
    assert got == [7]


async def test_close_with_error_is_raised_to_the_waiter() -> None:
    channel: Channel[int] = Channel()
    channel.forward_to(lambda item: None)
    waiter = asyncio.create_task(channel.wait_closed())
    await asyncio.sleep(0)
    channel.close(RuntimeError("socket dropped"))
    with pytest.raises(RuntimeError, match="socket dropped"):
        await waiter


async def test_callback_error_closes_the_channel_without_raising_to_the_sender() -> None:
    channel: Channel[int] = Channel()
    got: list[int] = []

    def callback(item: int) -> None:
        if item == 2:
            raise ValueError("sink broke")
        got.append(item)

    waiter = asyncio.create_task(channel.wait_closed())
    await asyncio.sleep(0)
    channel.forward_to(callback)
    channel.send(1)
    channel.send(2)  # must not raise here: this is the provider's receive loop
    channel.send(3)
    assert got == [1]
    assert channel.closed
    with pytest.raises(ValueError, match="sink broke"):
        await waiter
    with pytest.raises(ValueError, match="sink broke"):
        await channel.recv()


async def test_callback_error_while_draining_queued_items_drops_the_rest() -> None:
    channel: Channel[int] = Channel()
    for item in (1, 2, 3):
        channel.send(item)

    def callback(item: int) -> None:
        raise ValueError(f"bad {item}")

    channel.forward_to(callback)
    assert channel.closed
    assert len(channel) == 0
    with pytest.raises(ValueError, match="bad 1"):
        await channel.wait_closed()


async def test_stop_forwarding_queues_again_for_recv() -> None:
    channel: Channel[int] = Channel()
    got: list[int] = []
    channel.forward_to(got.append)
    channel.send(1)
    channel.stop_forwarding()
    channel.send(2)
    assert got == [1]
    assert await channel.recv() == 2
    channel.close()
    with pytest.raises(ChannelClosed):
        await channel.recv()


async def test_forward_until_closed_stops_forwarding_when_its_consumer_is_cancelled() -> None:
    channel: Channel[int] = Channel()
    got: list[int] = []
    consumer = asyncio.create_task(channel.forward_until_closed(got.append))
    await asyncio.sleep(0)
    channel.send(1)
    assert got == [1]  # synchronously, inside send()
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    channel.send(2)  # queued for a later consumer, not handed to the gone one
    assert got == [1]
    assert await channel.recv() == 2


async def test_forward_until_closed_returns_at_close_and_raises_its_error() -> None:
    channel: Channel[int] = Channel()
    consumer = asyncio.create_task(channel.forward_until_closed(lambda item: None))
    await asyncio.sleep(0)
    assert not consumer.done()
    channel.close(RuntimeError("socket dropped"))
    with pytest.raises(RuntimeError, match="socket dropped"):
        await consumer


def test_on_close_runs_synchronously_once_at_close_or_at_once_when_closed() -> None:
    channel: Channel[int] = Channel()
    calls: list[str] = []
    channel.on_close(lambda: calls.append("first"))
    channel.send(1)
    assert calls == []
    channel.close()
    channel.close()  # idempotent: the callback ran once, inside close()
    assert calls == ["first"]
    channel.on_close(lambda: calls.append("late"))  # already closed: called at once
    assert calls == ["first", "late"]
