"""The OpenAI Realtime client on its own: ask one question as text, stream the reply to a WAV.

No runtime, no transport: just `OpenAIRealtimeModel` -> session -> one `Generation`, whose
messages (a gpt-realtime-2 reply may hold a preamble *and* an answer) are written one after
the other, as a player would play them.

    # against the embedded local simulator (no API key, no network):
    uv run python docs/examples/stream_reply_to_wav.py --out reply.wav "What's the weather?"

    # against OpenAI (needs OPENAI_API_KEY):
    uv run python docs/examples/stream_reply_to_wav.py --url wss://api.openai.com/v1 \
        --model gpt-realtime --out reply.wav "Say hello in three languages."

    # against a running `vocalis sim-server` (any key string is accepted):
    uv run python docs/examples/stream_reply_to_wav.py --url ws://127.0.0.1:8765/v1 ...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import AsyncIterator

import numpy as np

from vocalis.audio.frame import AudioFrame
from vocalis.audio.wav import write_wav
from vocalis.conversation.items import MessageItem
from vocalis.providers.base import SessionOptions
from vocalis.providers.openai import OpenAIRealtimeModel


@contextlib.asynccontextmanager
async def endpoint(url: str | None) -> AsyncIterator[tuple[str, str | None]]:
    """(base_url, api_key): the given URL, or an embedded simulator for the duration."""
    if url is not None:
        yield url, None  # the model reads OPENAI_API_KEY
        return
    from vocalis.sim.server import SimServer

    scenario = {"responses": [{"items": [{"say": "Let me think."}, {"say": "Here is my answer."}]}]}
    async with SimServer(scenario=scenario, pace=0.0) as server:
        yield server.url.removesuffix("/realtime"), "sk-local-simulator"


async def stream_reply(
    question: str, out: str, url: str | None, model_name: str, voice: str | None
) -> None:
    async with endpoint(url) as (base_url, key):
        model = OpenAIRealtimeModel(
            model_name, api_key=key or os.environ.get("OPENAI_API_KEY"), base_url=base_url
        )
        # Manual turns: no VAD, we ask explicitly.
        session = await model.connect(
            SessionOptions(instructions="Answer briefly.", voice=voice, turn_detection=None)
        )
        try:
            await session.create_item(MessageItem(id="question", role="user", text=question))
            generation = await session.generate_reply()
            chunks: list[np.ndarray] = []
            async for message in generation.messages:  # one message = one segment, in order
                async for chunk in message.audio:
                    chunks.append(chunk)
                transcript = "".join([t async for t in message.text])
                print(f"[{message.item_id}] {transcript!r} ({message.audio_received_ms:.0f} ms)")
            done = await generation.done
            print(f"response {done.response_id}: {done.status}")
        finally:
            await session.aclose()
    rate = model.capabilities.output_sample_rate
    audio = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    write_wav(out, AudioFrame(np.ascontiguousarray(audio, dtype=np.int16), rate))
    print(f"wrote {out}: {len(audio) / rate:.2f} s at {rate} Hz")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="?", default="Hello! Who are you?")
    parser.add_argument(
        "--url", help="API base URL, e.g. wss://api.openai.com/v1 (default: embedded simulator)"
    )
    parser.add_argument("--model", default="gpt-realtime")
    parser.add_argument("--voice", default=None)
    parser.add_argument("--out", default="reply.wav")
    args = parser.parse_args(argv)
    asyncio.run(stream_reply(args.question, args.out, args.url, args.model, args.voice))
    return 0


if __name__ == "__main__":
    sys.exit(main())
