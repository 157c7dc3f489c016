"""Response lifecycle: cancel, the one-active-response rule, out-of-band, the default brain."""

from __future__ import annotations

from vocalis.sim.brain import PlannedMessage, ResponsePlan
from vocalis.sim.conversation import Conversation
from vocalis.sim.ids import IdFactory
from vocalis.sim.response_context import ResponseContext
from vocalis.sim.responses import ResponseRun
from vocalis.sim.server import SimServer
from vocalis.sim.voice import Speech

from .conftest import add_user_text, open_client

LONG = "This answer is long enough to be cancelled while it is still being spoken."
HOLD = {"kind": "stall", "seconds": 60, "after_event": "response.output_audio.delta"}


async def test_client_cancel_closes_open_items_incomplete() -> None:
    scenario = {"responses": [{"say": LONG, "faults": [HOLD]}]}
    async with SimServer(scenario=scenario) as server, open_client(server) as client:
        await client.send("response.create")
        created = await client.until("response.created")
        await client.until("response.output_audio.delta")
        start = len(client.events)
        await client.send("response.cancel", response_id=created["response"]["id"])
        done = await client.until("response.done")
        assert client.types(start=start) == [
            "response.output_audio.done",
            "response.output_audio_transcript.done",
            "response.content_part.done",
            "response.output_item.done",
            "conversation.item.done",
            "response.done",
        ]
        response = done["response"]
        assert response["status"] == "cancelled"
        assert response["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
        assert response["output"][0]["status"] == "incomplete"
        assert server.sessions[0].conversation.items[0].status == "incomplete"
        # nothing more for this response; a second cancel has nothing to cancel
        await client.send("response.cancel", event_id="cli_c2")
        error = await client.recv()
        assert error["type"] == "error"
        assert error["error"]["code"] == "response_cancel_not_active"
        assert error["error"]["message"] == "Cancellation failed: no active response found"
        assert error["error"]["event_id"] == "cli_c2"


async def test_cancel_without_active_response() -> None:
    async with SimServer() as server, open_client(server) as client:
        await client.send("response.cancel")
        error = (await client.recv())["error"]
        assert error["code"] == "response_cancel_not_active"
        assert server.sessions[0].closed is False


async def test_second_response_create_while_active_is_refused() -> None:
    scenario = {"responses": [{"say": LONG, "faults": [HOLD]}]}
    async with SimServer(scenario=scenario) as server, open_client(server) as client:
        await client.send("response.create")
        created = await client.until("response.created")
        rid = created["response"]["id"]
        await client.send("response.create", event_id="cli_dup")
        error = await client.until("error")
        assert error["error"] == {
            "type": "invalid_request_error",
            "code": "conversation_already_has_active_response",
            "message": f"Conversation already has an active response in progress: {rid}. "
            "Wait until the response is finished before creating a new one.",
            "param": None,
            "event_id": "cli_dup",
        }
        assert len(client.of_type("response.created")) == 1
        # an out-of-band response may run in parallel
        await client.send(
            "response.create",
            response={
                "conversation": "none",
                "output_modalities": ["text"],
                "metadata": {"k": "oob"},
            },
        )
        oob_done = await client.until(
            "response.done", lambda e: e["response"]["conversation_id"] is None
        )
        assert oob_done["response"]["metadata"] == {"k": "oob"}
        assert oob_done["response"]["status"] == "completed"
        assert [i.type for i in server.sessions[0].conversation.items] == ["message"]
        await client.send("response.cancel")
        await client.until("response.done", lambda e: e["response"]["id"] == rid)
        # after the cancel is acknowledged, a new response is accepted
        await client.send("response.create")
        done = await client.until("response.done")
        assert done["response"]["status"] == "completed"


async def test_say_exactly_and_default_brain() -> None:
    scenario = {"responses": ["Scripted first."]}
    async with SimServer(scenario=scenario) as server, open_client(server) as client:
        await client.send(
            "response.create", response={"instructions": 'Say exactly: "Welcome to vocalis."'}
        )
        done = await client.until("response.done")
        assert done["response"]["output"][0]["content"][0]["transcript"] == "Welcome to vocalis."
        await client.send("response.create")  # the script was not consumed by say()
        done = await client.until("response.done")
        assert done["response"]["output"][0]["content"][0]["transcript"] == "Scripted first."
        await add_user_text(client, "what time is it")
        await client.send("response.create")  # script exhausted: echo
        done = await client.until("response.done")
        assert done["response"]["output"][0]["content"][0]["transcript"] == (
            "You said: what time is it"
        )
        assert server.sessions[0].notes[-1].endswith("answered by brain:echo")


async def test_max_output_tokens_ends_incomplete() -> None:
    async with SimServer(scenario={"responses": [LONG]}) as server, open_client(server) as client:
        await client.send("response.create", response={"max_output_tokens": 5})
        done = await client.until("response.done")
    response = done["response"]
    assert response["status"] == "incomplete"
    assert response["status_details"] == {"type": "incomplete", "reason": "max_output_tokens"}
    assert response["output"][0]["status"] == "incomplete"
    assert server.sessions[0].conversation.items[0].audio_ms < 2000


async def test_delete_of_in_flight_item_stops_its_stream() -> None:
    scenario = {"responses": [{"say": LONG, "faults": [HOLD]}]}
    async with SimServer(scenario=scenario) as server, open_client(server) as client:
        await client.send("response.create")
        added = await client.until("response.output_item.added")
        await client.until("response.output_audio.delta")
        await client.send("conversation.item.delete", item_id=added["item"]["id"])
        await client.until("conversation.item.deleted")
        await client.send("response.cancel")
        done = await client.until("response.done")
        assert done["response"]["status"] == "cancelled"
        # no conversation.item.done for a deleted item
        assert client.of_type("conversation.item.done") == []
        assert server.sessions[0].conversation.items == []


def test_pacing_points_put_every_chunk_at_its_place_on_the_audio_timeline() -> None:
    """What ``--pace`` paces: each audio delta is due at its own start on the response's audio
    timeline (the shell waits until ``point / pace`` seconds after the start), every word's
    transcript delta no later than its audio, and ``response.done`` once all audio was due."""
    texts = ("First sentence of two.", "And the second one.")
    plan = ResponsePlan(tuple(PlannedMessage(t) for t in texts))
    ctx = ResponseContext(
        response_id="resp_1",
        conversation_id="conv_1",
        output_modalities=["audio"],
        output_format={"type": "audio/pcm", "rate": 24000},
        voice="marin",
    )
    run = ResponseRun(ctx, plan, conversation=Conversation(), ids=IdFactory(0))
    at = 0.0
    audio_due: list[tuple[int, float]] = []
    word_due: list[tuple[int, float]] = []
    for element in run.stream():
        if isinstance(element, float):
            assert element >= at  # the timeline never goes back
            at = element
        elif element["type"] == "response.output_audio.delta":
            audio_due.append((element["output_index"], at))
        elif element["type"] == "response.output_audio_transcript.delta":
            word_due.append((element["output_index"], at))
        elif element["type"] == "response.done":
            done_at = at
    first, second = (item.audio_ms for item in run.items)
    for index, base in ((0, 0.0), (1, first)):
        chunks = [d for i, d in audio_due if i == index]
        speech_chunks = [base + c.start_ms for c in _speech(run, index).chunks]
        assert chunks == speech_chunks
        words = [base + w.start_ms for w in _speech(run, index).words]
        dues = [d for i, d in word_due if i == index]
        assert all(due <= word for due, word in zip(dues, words, strict=True))
    assert done_at == first + second


def _speech(run: ResponseRun, index: int) -> Speech:
    speech = run._outs[index].speech
    assert speech is not None
    return speech
