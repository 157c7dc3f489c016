"""`InputTimeline`'s ring answers exactly as the plain list of every frame it replaced."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from vocalis.runtime.metrics import InputTimeline


def reference(frames: list[tuple[float, float]], stream_ms: float) -> float | None:
    """The original definition: a linear scan of the kept (end_ms, captured_at) frames."""
    if not frames:
        return None
    for end_ms, at in frames:
        if end_ms >= stream_ms:
            return at - (end_ms - stream_ms) / 1000.0
    end_ms, at = frames[-1]
    return at + (stream_ms - end_ms) / 1000.0


_STEPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("append"),
            st.floats(0.0, 100.0, allow_nan=False),
            st.floats(0.0, 1e4, allow_nan=False),
        ),
        st.tuples(st.just("reset"), st.just(0.0), st.just(0.0)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(
    steps=_STEPS,
    keep=st.integers(1, 40),  # rings filled, still growing, and reset while growing
    queries=st.lists(st.floats(-50.0, 3000.0, allow_nan=False), max_size=8),
)
def test_ring_matches_the_list_of_the_last_frames(
    steps: list[tuple[str, float, float]], keep: int, queries: list[float]
) -> None:
    timeline = InputTimeline(keep_frames=keep)
    frames: list[tuple[float, float]] = []
    stream_ms = 0.0
    for op, duration, at in steps:
        if op == "reset":
            timeline.reset()
            frames, stream_ms = [], 0.0
        else:
            timeline.append(duration, at)
            stream_ms += duration
            frames = [*frames, (stream_ms, at)][-keep:]
        assert timeline.stream_ms == stream_ms
        for q in queries:
            assert timeline.clock_time_of(q) == reference(frames, q)


def test_the_default_ring_answers_exactly_for_the_last_20_seconds() -> None:
    """A minute of 20 ms frames, each a little late: a speech end up to 20 s back maps to
    the clock time its frame was captured at (the ring keeps that much by default)."""
    timeline = InputTimeline()
    frames: list[tuple[float, float]] = []
    for k in range(3000):
        at = 100.0 + k * 0.02 + (k % 7) * 0.001
        timeline.append(20.0, at)
        frames.append((timeline.stream_ms, at))
    newest = timeline.stream_ms
    for back_ms in (0.0, 510.0, 2_000.0, 19_970.0):
        assert timeline.clock_time_of(newest - back_ms) == reference(frames, newest - back_ms)


def _traced_bytes_of(build: Callable[[], InputTimeline]) -> tuple[InputTimeline, int]:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        timeline = build()
        return timeline, tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_a_timeline_holds_only_the_frames_it_was_sent() -> None:
    """#17: a connected caller who has sent nothing costs no ring (it was 16 KB up front);
    a full ring costs its 16 bytes per frame, without the arrays' spare growth capacity."""

    def filled(frames: int) -> Callable[[], InputTimeline]:
        def build() -> InputTimeline:
            timeline = InputTimeline(keep_frames=1000)
            for k in range(frames):
                timeline.append(20.0, k * 0.02)
            return timeline

        return build

    _, idle = _traced_bytes_of(filled(0))
    _, second = _traced_bytes_of(filled(50))
    full, kept = _traced_bytes_of(filled(5000))
    assert idle < 1024
    assert second < 2 * 1024
    assert 16_000 <= kept < 16_000 + 1024
    # 19.99 s back: 10 ms before the end of frame 4000, the oldest frame kept
    assert full.clock_time_of(full.stream_ms - 19_990.0) == 4000 * 0.02 - 10.0 / 1000.0
