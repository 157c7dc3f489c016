"""conversation.item.* over the wire: create/retrieve/delete/truncate and their errors."""

from __future__ import annotations

import base64
import gc
import weakref
from typing import Any

from vocalis.sim.server import SimServer
from vocalis.sim.voice import OPENAI_VOICES, speak

from .conftest import Client, add_user_text, open_client

LINE = "The quick brown fox jumps over the lazy dog."


def _error(event: dict[str, Any]) -> dict[str, Any]:
    assert event["type"] == "error", event
    error: dict[str, Any] = event["error"]
    return error


async def _spoken_item(client: Client) -> dict[str, Any]:
    await client.send("response.create")
    done = await client.until("response.done")
    item: dict[str, Any] = done["response"]["output"][0]
    return item


async def test_create_order_root_and_previous() -> None:
    async with SimServer() as server, open_client(server) as client:
        a = (await add_user_text(client, "A"))["item"]["id"]
        b_done = await add_user_text(client, "B")
        assert b_done["previous_item_id"] == a
        await client.send(
            "conversation.item.create",
            previous_item_id=a,
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "C"}],
            },
        )
        c_done = await client.until("conversation.item.done")
        assert c_done["previous_item_id"] == a
        await client.send(
            "conversation.item.create",
            previous_item_id="root",
            item={
                "type": "message",
                "role": "system",
                "content": [{"type": "input_text", "text": "R"}],
            },
        )
        r_done = await client.until("conversation.item.done")
        assert r_done["previous_item_id"] is None
        await client.send(
            "conversation.item.create",
            event_id="cli_7",
            previous_item_id="nope",
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "X"}],
            },
        )
        err = _error(await client.recv())
        assert err["param"] == "previous_item_id" and err["event_id"] == "cli_7"
        await client.send(
            "conversation.item.create",
            item={
                "id": a,
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "D"}],
            },
        )
        assert _error(await client.recv())["code"] == "item_duplicate_id"
        session = server.sessions[0]
        assert [i.text for i in session.conversation.items] == ["R", "A", "C", "B"]


async def test_delete_and_double_delete() -> None:
    async with SimServer() as server, open_client(server) as client:
        item_id = (await add_user_text(client, "hello"))["item"]["id"]
        await client.send("conversation.item.delete", item_id=item_id)
        assert await client.recv() == {
            "type": "conversation.item.deleted",
            "event_id": client.events[-1]["event_id"],
            "item_id": item_id,
        }
        await client.send("conversation.item.delete", event_id="cli_2", item_id=item_id)
        assert _error(await client.recv()) == {
            "type": "invalid_request_error",
            "code": "item_delete_invalid_item_id",
            "message": f"Error deleting item: the item with id '{item_id}' does not exist.",
            "param": None,
            "event_id": None,
        }
        assert server.sessions[0].conversation.items == []


async def test_retrieve_with_audio_and_unknown() -> None:
    async with SimServer(scenario={"responses": [LINE]}) as server, open_client(server) as client:
        item = await _spoken_item(client)
        await client.send("conversation.item.retrieve", item_id=item["id"])
        retrieved = (await client.until("conversation.item.retrieved"))["item"]
        audio = base64.b64decode(retrieved["content"][0]["audio"])
        assert len(audio) == len(server.sessions[0].conversation.items[0].audio) > 0
        assert retrieved["content"][0]["transcript"] == LINE
        await client.send("conversation.item.retrieve", item_id="ghost")
        assert _error(await client.recv())["message"] == (
            "Error retrieving item: the item with id 'ghost' does not exist."
        )
        # the log keeps byte counts, not audio
        logged = server.sessions[0].server_events[-2]
        assert logged["item"]["content"][0]["audio"] == len(audio)


async def test_truncate_cuts_audio_and_transcript_at_word_boundary() -> None:
    async with SimServer(scenario={"responses": [LINE]}) as server, open_client(server) as client:
        item = await _spoken_item(client)
        speech = speak(LINE, OPENAI_VOICES["marin"], "audio/pcm", 1.0, 0)
        cut = int(speech.words[3].end_ms) + 1  # just after "fox"
        await client.send(
            "conversation.item.truncate", item_id=item["id"], content_index=0, audio_end_ms=cut
        )
        truncated = await client.recv()
        assert truncated["type"] == "conversation.item.truncated"
        assert (truncated["item_id"], truncated["content_index"], truncated["audio_end_ms"]) == (
            item["id"],
            0,
            cut,
        )
        stored = server.sessions[0].conversation.items[0]
        assert stored.audio_ms == cut
        assert stored.text == "The quick brown fox"
        assert stored.truncated_at_ms == cut
        await client.send("conversation.item.retrieve", item_id=item["id"])
        retrieved = (await client.until("conversation.item.retrieved"))["item"]
        assert len(base64.b64decode(retrieved["content"][0]["audio"])) == cut * 48


async def test_truncate_errors_over_the_wire() -> None:
    async with SimServer(scenario={"responses": [LINE]}) as server, open_client(server) as client:
        user_id = (await add_user_text(client, "hi"))["item"]["id"]
        item = await _spoken_item(client)
        length = int(server.sessions[0].conversation.items[1].audio_ms)
        cases = [
            (
                item["id"],
                length + 85,
                "invalid_value",
                f"Audio content of {length}ms is already shorter than {length + 85}ms",
            ),
            (
                user_id,
                10,
                "unsupported_content_type",
                "Only model output audio messages can be truncated",
            ),
            (
                item["id"],
                -11,
                "integer_below_min_value",
                "Invalid 'audio_end_ms': integer below minimum value. "
                "Expected a value >= 0, but got -11 instead.",
            ),
            (
                "item_nope",
                10,
                "item_truncate_invalid_item_id",
                "Error truncating item: the item with id 'item_nope' does not exist.",
            ),
        ]
        for item_id, end_ms, code, message in cases:
            await client.send(
                "conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=end_ms
            )
            err = _error(await client.recv())
            assert (err["code"], err["message"]) == (code, message)
        # the session is still usable after every error
        await client.send(
            "conversation.item.truncate", item_id=item["id"], content_index=0, audio_end_ms=0
        )
        assert (await client.recv())["type"] == "conversation.item.truncated"
        assert server.sessions[0].conversation.items[1].text == ""


async def test_truncate_of_an_item_whose_response_is_in_flight() -> None:
    scenario = {
        "responses": [
            {
                "say": LINE,
                "faults": [
                    {"kind": "stall", "seconds": 60, "after_audio_ms": {"item": 0, "ms": 600}}
                ],
            }
        ]
    }
    async with SimServer(scenario=scenario) as server, open_client(server) as client:
        await client.send("response.create")
        added = await client.until("response.output_item.added")
        item_id = added["item"]["id"]
        received = 0
        while received < 600 * 48:  # read audio up to the stall point
            event = await client.until("response.output_audio.delta")
            received += len(base64.b64decode(event["delta"]))
        await client.send(
            "conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=300
        )
        await client.until("conversation.item.truncated")
        await client.send("response.cancel")
        done = await client.until("response.done")
        assert done["response"]["status"] == "cancelled"
        item = server.sessions[0].conversation.items[0]
        assert item.audio_ms == 300 and item.status == "incomplete"
        heard = client.of_type("response.output_audio_transcript.done")[0]["transcript"]
        assert heard == item.text and LINE.startswith(heard)


async def test_sessions_saying_the_same_line_share_its_audio_and_truncate_their_own() -> None:
    """Memory: assistant audio is held once (the cached speech), not copied per session."""
    async with SimServer(scenario={"responses": [LINE]}) as server:
        async with open_client(server) as first, open_client(server) as second:
            item = await _spoken_item(first)
            await _spoken_item(second)
            streamed = b"".join(
                base64.b64decode(e["delta"]) for e in first.of_type("response.output_audio.delta")
            )
            await first.send(
                "conversation.item.truncate", item_id=item["id"], content_index=0, audio_end_ms=500
            )
            await first.until("conversation.item.truncated")
            await first.send("conversation.item.retrieve", item_id=item["id"])
            retrieved = (await first.until("conversation.item.retrieved"))["item"]
        cut, whole = (s.conversation.items[0] for s in server.sessions)
    assert cut.audio_source is whole.audio_source
    assert base64.b64decode(retrieved["content"][0]["audio"]) == streamed[: 500 * 48]
    assert (cut.audio_ms, whole.audio_ms) == (500, len(streamed) / 48)
    assert bytes(whole.audio) == streamed


async def test_a_deleted_item_and_its_audio_are_released() -> None:
    """Memory: nothing keeps a deleted item (and its caller audio) alive once its response
    ended — neither the response, nor the records (they hold wire summaries, not items)."""
    async with SimServer(scenario={"responses": [LINE]}) as server, open_client(server) as client:
        spoken = await _spoken_item(client)
        audio = base64.b64encode(b"\x01\x00" * 24 * 200).decode()
        user = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_audio", "audio": audio}],
        }
        await client.send("conversation.item.create", item=user)
        user_id = (await client.until("conversation.item.done"))["item"]["id"]
        conversation = server.sessions[0].conversation
        refs = [weakref.ref(conversation.retrieve(i)) for i in (spoken["id"], user_id)]
        for item_id in (spoken["id"], user_id):
            await client.send("conversation.item.delete", item_id=item_id)
            await client.until("conversation.item.deleted")
        gc.collect()
        assert [ref() for ref in refs] == [None, None]
