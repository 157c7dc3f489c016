"""Caller audio batched into appends (`providers/openai/appends.py`): nothing lost, nothing
reordered, one append per chunk — checked as a pure rule and against the real sim server."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vocalis.audio.codec import b64decode_pcm16, b64encode_pcm16
from vocalis.providers.base import InputSpeechStarted, SessionOptions
from vocalis.providers.openai import OpenAIRealtimeModel
from vocalis.providers.openai.appends import (
    QUIET_PEAK,
    SOUND_HANGOVER_QUIET_CHUNKS,
    InputAppends,
    is_quiet,
)
from vocalis.providers.openai.formats import AUDIO_FORMATS, AudioFormatName

from .openai_sim_support import append_in_frames, client_types, silence, sim_session, tone, until

PREFIX = '{"type":"input_audio_buffer.append","audio":"'


def _audio_of(message: str) -> np.ndarray:
    assert message.startswith(PREFIX) and message.endswith('"}')
    return b64decode_pcm16(message[len(PREFIX) : -2])


@given(
    chunk=st.integers(1, 2000),
    sizes=st.lists(st.integers(1, 1500), max_size=30),
)
def test_appends_keep_every_sample_in_order(chunk: int, sizes: list[int]) -> None:
    appends = InputAppends(b64encode_pcm16, chunk)
    rng = np.random.default_rng(len(sizes))
    frames = [rng.integers(-32768, 32767, n, dtype=np.int16) for n in sizes]
    sent: list[np.ndarray] = []
    for frame in frames:
        message = appends.add(frame)
        if message is not None:
            audio = _audio_of(message)
            assert audio.shape[0] >= chunk  # a full chunk, never a partial one
            sent.append(audio)
    tail = appends.flush()
    if tail is not None:
        sent.append(_audio_of(tail))
    assert appends.pending_samples == 0 and appends.flush() is None
    joined = np.concatenate(sent) if sent else np.zeros(0, np.int16)
    expected = np.concatenate(frames) if frames else np.zeros(0, np.int16)
    np.testing.assert_array_equal(joined, expected)


def test_chunk_must_be_positive() -> None:
    with pytest.raises(ValueError, match="chunk_samples"):
        InputAppends(b64encode_pcm16, 0)


def test_input_chunk_ms_is_bounded() -> None:
    with pytest.raises(ValueError, match="input_chunk_ms"):
        OpenAIRealtimeModel(api_key="sk-x", input_chunk_ms=-1)
    with pytest.raises(ValueError, match="input_chunk_ms"):
        OpenAIRealtimeModel(api_key="sk-x", input_chunk_ms=10_000)


@pytest.mark.parametrize(
    ("chunk_ms", "level", "expected_ms"),
    [(40, 1000, [40, 40, 20]), (0, 1000, [20] * 5), (40, 1, [100]), (40, 0, [100])],
)
async def test_commit_flushes_pending_audio_first(
    chunk_ms: int, level: int, expected_ms: list[int]
) -> None:
    """Audio with sound goes in normal chunks; quiet audio (levels 0 and 1) outside a caller
    turn is held up to the quiet chunk — and a commit sends whatever is pending first."""
    frames = [np.full(480, level * (k + 1), dtype=np.int16) for k in range(5)]  # 5 x 20 ms
    async with sim_session(input_chunk_ms=chunk_ms) as (server, session, _reader):
        for frame in frames:
            session.append_audio(frame)
        await session.commit_audio()
        sent = server.sessions[0].client_events
        types = client_types(sent)
        assert types[-1] == "input_audio_buffer.commit"
        appends = [e for e in sent if e["type"] == "input_audio_buffer.append"]
        assert types[-1 - len(appends) : -1] == ["input_audio_buffer.append"] * len(appends)
        # The sim logs an append's audio as its byte count (the content rule is tested above).
        assert [e["audio"] // 48 for e in appends] == expected_ms  # 48 bytes per ms of PCM16


async def test_a_partial_chunk_is_not_held_back_when_the_caller_pauses() -> None:
    async with sim_session(input_chunk_ms=100) as (server, session, _reader):
        session.append_audio(np.ones(480, dtype=np.int16))  # 20 ms, then nothing more
        sim = server.sessions[0]
        await until(lambda: "input_audio_buffer.append" in client_types(sim.client_events))
        (append,) = [e for e in sim.client_events if e["type"] == "input_audio_buffer.append"]
        assert append["audio"] == 960


async def test_frames_for_a_dead_socket_are_never_written() -> None:
    """Liveness is checked per append, not per frame: a frame that completes a chunk on a
    socket that ended is dropped, and so is a partial chunk when it is flushed."""
    from vocalis.providers.openai.connection import _Connection

    class RecordingSocket:
        backend = "picows"

        def __init__(self) -> None:
            self.written: list[str] = []

        def write(self, message: str) -> bool:
            self.written.append(message)
            return True

    ws = RecordingSocket()
    conn = _Connection(ws, appends=InputAppends(b64encode_pcm16, 960), hold_s=0.04)  # type: ignore[arg-type]
    frame = np.ones(480, dtype=np.int16)
    conn.send_audio(frame)
    conn.send_audio(frame)  # a full 40 ms chunk: written at once
    assert [len(_audio_of(m)) for m in ws.written] == [960]
    conn.send_audio(frame)  # a partial chunk, then the socket ends
    conn.end("dropped")
    conn.send_audio(frame)  # completes the chunk of a dead socket
    conn.send_audio(frame)
    conn.flush_audio()
    assert len(ws.written) == 1


_LEVELS = st.sampled_from([0, 1, QUIET_PEAK, QUIET_PEAK + 1, 8000])


@given(
    chunk=st.integers(1, 1000),
    quiet_chunk=st.integers(0, 3000),
    frames=st.lists(st.tuples(st.integers(1, 600), _LEVELS, st.booleans()), max_size=40),
)
def test_quiet_batching_holds_only_quiet_audio_outside_a_turn(
    chunk: int, quiet_chunk: int, frames: list[tuple[int, int, bool]]
) -> None:
    """Every sample once and in order; audio with sound (or any audio inside a caller turn)
    goes no later than the normal chunk; quiet audio waits at most the quiet chunk."""
    appends = InputAppends(b64encode_pcm16, chunk, quiet_chunk)
    rng = np.random.default_rng(len(frames))
    sent: list[np.ndarray] = []
    given_frames: list[np.ndarray] = []
    pending: list[np.ndarray] = []
    for size, level, in_turn in frames:
        frame = (rng.choice([-1, 1], size) * level).astype(np.int16)
        appends.in_turn = in_turn
        given_frames.append(frame)
        pending.append(frame)
        message = appends.add(frame)
        held = sum(len(p) for p in pending)
        if message is None:
            normal_due = held >= chunk
            assert not (normal_due and (in_turn or not all(map(is_quiet, pending))))
            assert held < max(chunk, quiet_chunk)
            assert appends.pending_samples == held
        else:
            # Exactly the event of the pending audio (a silent batch's is built once).
            assert message == PREFIX + b64encode_pcm16(np.concatenate(pending)) + '"}'
            sent.append(_audio_of(message))
            pending = []
    tail = appends.flush()
    if tail is not None:
        sent.append(_audio_of(tail))
    joined = np.concatenate(sent) if sent else np.zeros(0, np.int16)
    expected = np.concatenate(given_frames) if given_frames else np.zeros(0, np.int16)
    np.testing.assert_array_equal(joined, expected)


@pytest.mark.parametrize("fmt", sorted(AUDIO_FORMATS))
def test_a_silent_batch_is_the_event_of_its_audio_in_every_format(fmt: AudioFormatName) -> None:
    """Digital zero in every wire format (G.711's zero is not zero bytes): the shared silent
    event is the one the format's encoder makes of the same samples."""
    encode = AUDIO_FORMATS[fmt].encode_b64
    appends = InputAppends(encode, 160, 800)  # 8 kHz: 20 ms chunks, quiet 100 ms
    frames = [np.zeros(80, np.int16)] * 12 + [np.full(80, 1, np.int16)] + [np.zeros(80, np.int16)]
    messages = [m for m in map(appends.add, frames) if m is not None]
    messages.append(appends.flush() or "")
    assert (
        messages
        == [
            PREFIX + encode(np.zeros(800, np.int16)) + '"}',  # a quiet batch of digital zero
            PREFIX + encode(np.concatenate(frames[10:14])) + '"}',  # quiet, not all zero
        ]
    )


def test_a_huge_frame_of_silence_is_encoded_as_it_comes() -> None:
    """Silence far beyond a quiet batch (a source pushing seconds at once) is still exactly
    its audio's event (it is not kept in the shared cache of usual batches)."""
    appends = InputAppends(b64encode_pcm16, 960, 4800)
    frames = [np.zeros(480, np.int16)] * 2 + [np.zeros(24000, np.int16)]
    messages = [m for m in map(appends.add, frames) if m is not None]
    assert messages == [PREFIX + b64encode_pcm16(np.zeros(24960, np.int16)) + '"}']


def test_after_sound_quiet_audio_keeps_the_normal_chunk_for_the_hangover() -> None:
    appends = InputAppends(b64encode_pcm16, 960, 4800)  # 40 ms, quiet 200 ms at 24 kHz
    loud, quiet = np.full(480, 8000, np.int16), np.zeros(480, np.int16)
    sizes: list[int] = []
    for frame in [loud, loud] + [quiet] * 100:
        message = appends.add(frame)
        if message is not None:
            sizes.append(len(_audio_of(message)))
    hangover = SOUND_HANGOVER_QUIET_CHUNKS * 4800 // 960  # normal chunks after the sound
    assert sizes[: 1 + hangover] == [960] * (1 + hangover)
    assert set(sizes[1 + hangover :]) == {4800}  # then quiet batching again


def test_is_quiet_is_within_the_peak_both_ways() -> None:
    assert is_quiet(np.zeros(0, np.int16)) and is_quiet(np.full(4, QUIET_PEAK, np.int16))
    assert is_quiet(np.full(4, -QUIET_PEAK, np.int16))
    assert not is_quiet(np.array([0, QUIET_PEAK + 1], np.int16))
    assert not is_quiet(np.array([-QUIET_PEAK - 1, 0], np.int16))
    assert not is_quiet(np.array([-32768], np.int16))


def _within_peak(samples: np.ndarray) -> bool:
    """The rule, sample by sample in Python ints (no numpy overflow at -32768)."""
    return all(-QUIET_PEAK <= int(x) <= QUIET_PEAK for x in samples.tolist())


_EDGES = [0, 1, -1, QUIET_PEAK, -QUIET_PEAK, QUIET_PEAK + 1, -QUIET_PEAK - 1, 32767, -32768]


@given(
    size=st.integers(0, 1200),
    # Mostly digital zero (the byte-comparison path) with a few edge or random samples set.
    spikes=st.lists(
        st.tuples(st.integers(0, 1199), st.sampled_from(_EDGES) | st.integers(-32768, 32767)),
        max_size=4,
    ),
    layout=st.sampled_from(["native", "strided", "big-endian"]),
)
def test_is_quiet_decides_exactly_the_peak_rule(
    size: int, spikes: list[tuple[int, int]], layout: str
) -> None:
    samples = np.zeros(size * 2 if layout == "strided" else size, np.int16)
    if layout == "strided":  # a non-contiguous view: every other sample of a longer buffer
        samples[1::2] = 32767  # loud samples between, never part of the view
        samples = samples[::2]
    for at, value in spikes:
        if at < size:
            samples[at] = value
    if layout == "big-endian":
        samples = samples.astype(">i2")
    assert is_quiet(samples) == _within_peak(samples)


async def test_quiet_batching_follows_the_provider_turn() -> None:
    """Against the sim's server VAD: silence before any turn goes in 200 ms appends, the
    caller's tone in 40 ms ones, and once the server said the turn started, silence too."""
    async with sim_session(options=SessionOptions()) as (server, session, reader):
        sim = server.sessions[0]

        def appended_ms() -> list[int]:
            events = sim.client_events
            return [e["audio"] // 48 for e in events if e["type"] == "input_audio_buffer.append"]

        append_in_frames(session, silence(400))
        await until(lambda: appended_ms() == [200, 200])
        append_in_frames(session, tone(400))
        await reader.wait_type(InputSpeechStarted)
        await until(lambda: sum(appended_ms()) == 800)
        assert appended_ms()[2:] == [40] * 10
        append_in_frames(session, silence(120))  # a pause inside the turn: not held longer
        await until(lambda: sum(appended_ms()) == 920)
        assert appended_ms()[12:] == [40, 40, 40]
