"""Small asyncio building blocks shared by providers, runtime and transports."""

from vocalis.utils.channel import Channel, ChannelClosed
from vocalis.utils.clock import Clock, ManualClock, MonotonicClock

__all__ = ["Channel", "ChannelClosed", "Clock", "ManualClock", "MonotonicClock"]
