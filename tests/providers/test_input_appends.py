"""Caller audio batched into appends (`providers/openai/appends.py`): nothing lost, nothing
reordered, one append per chunk — checked as a pure rule and against the real sim server."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from vocalis.audio.codec import b64decode_pcm16, b64encode_pcm16
from vocalis.providers.openai import OpenAIRealtimeModel
from vocalis.providers.openai.appends import InputAppends

from .openai_sim_support import client_types, sim_session, until

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


@pytest.mark.parametrize(("chunk_ms", "expected_ms"), [(40, [40, 40, 20]), (0, [20] * 5)])
async def test_commit_flushes_pending_audio_first(chunk_ms: int, expected_ms: list[int]) -> None:
    frames = [np.full(480, k + 1, dtype=np.int16) for k in range(5)]  # 5 x 20 ms at 24 kHz
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
    assert len(ws.written) == 1 and conn.queue.empty()
