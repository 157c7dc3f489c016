"""The replay provider: recorded from the real sim, it serves both benchmark clients.

No timing assertions. The recording must give back, for any connection, the events the sim
sent with that connection's own ids (a response the client asked for, items in order, its
tag echoed), or a density point on it would measure a client that rejects its provider.
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path

import pytest
from bench.common import CONTINUOUS_RESPONSE
from density_support import TINY, check_point

from bench import density, replay_provider

pytestmark = pytest.mark.timeout(180)


@pytest.mark.parametrize("mode", ["vocalis", "bare-picows"])
async def test_density_point_on_the_replay_provider(mode: str, tmp_path: Path) -> None:
    timing = replace(TINY, load="continuous", provider="replay", spread_s=0.2)
    point = await density.run_point(mode, 2, 1, timing, tmp_path, instrument=mode == "vocalis")
    check_point(point, 2)
    assert point["provider"] == "replay"
    assert point["device_frames"] >= 2  # the sessions spoke: audio reached both devices
    assert point["interruptions"] == 0
    assert (tmp_path / "replay_continuous.json").exists()  # captured once, then reused


async def test_recorded_response_renders_with_fresh_ids(tmp_path: Path) -> None:
    path = await replay_provider.capture(tmp_path / "recording.json", tmp_path)
    recording = json.loads(path.read_text(encoding="utf-8"))
    assert recording["version"] == replay_provider.RECORDING_VERSION  # a cache of another is redone
    request = {"type": "response.create", "response": {"metadata": {"client_event_id": "t7"}}}
    slots = replay_provider.response_slots(3, 2, "item_before", request)
    events = []
    for index, (_due, template, size, _item, _offset) in enumerate(recording["events"]):
        text = replay_provider.render(template, slots, f"e{index}")
        if size:
            payload = base64.b64encode(bytes(size)) + b'"}'
            event = json.loads(text + payload)
            assert len(base64.b64decode(event["delta"])) == size
        else:
            event = json.loads(text)
        assert event["event_id"] == f"e{index}"
        events.append(event)
    kinds = [e["type"] for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.done"
    assert events[0]["response"]["id"] == "resp_3x2"
    assert events[0]["response"]["metadata"] == {"client_event_id": "t7"}
    added = [e for e in events if e["type"] == "conversation.item.added"]
    assert [(e["previous_item_id"], e["item"]["id"]) for e in added] == [
        ("item_before", "item_3x2a"),
        ("item_3x2a", "item_3x2b"),
    ]
    # Due times follow the audio: never decreasing, the last one at the audio's end.
    dues = [entry[0] for entry in recording["events"]]
    assert dues == sorted(dues) and dues[-1] > 5000
    assert recording["texts"] == list(CONTINUOUS_RESPONSE)
    # The fixed messages carry the connection's session id.
    updated = json.loads(replay_provider.render(recording["session_updated"], slots, "u"))
    assert updated["type"] == "session.updated" and updated["session"]["id"] == "sess_replay000003"
