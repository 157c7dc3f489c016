"""The sim's HTTP side: client secrets (through the openai SDK), calls, 404s, handshake refusals."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from openai.types.realtime import ClientSecretCreateResponse
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from vocalis.sim.server import SimServer


class WallClock:
    """A wall clock the test moves (client-secret expiry)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _sdk(server: SimServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key="sk-test", base_url=server.base_url + "/v1", max_retries=0)


async def _first_event(url: str, headers: dict[str, str]) -> dict[str, Any]:
    async with connect(url, additional_headers=headers) as ws:
        event: dict[str, Any] = json.loads(await ws.recv())
        return event


async def test_client_secret_opens_its_configured_session_until_it_expires() -> None:
    clock = WallClock()
    async with SimServer(wall_clock=clock) as server:
        secret = await _sdk(server).realtime.client_secrets.create(
            expires_after={"anchor": "created_at", "seconds": 60},
            session={"type": "realtime", "instructions": "Be a pirate.", "model": "gpt-realtime"},
        )
        assert isinstance(secret, ClientSecretCreateResponse)
        assert secret.value.startswith("ek_") and secret.expires_at == int(clock.now) + 60
        assert secret.session.type == "realtime"
        auth = {"Authorization": f"Bearer {secret.value}"}
        created = await _first_event(server.url, auth)
        assert created["session"]["instructions"] == "Be a pirate."
        clock.now += 59
        await _first_event(server.url, auth)  # several sessions until it expires
        clock.now += 1
        with pytest.raises(InvalidStatus) as expired:
            await _first_event(server.url, auth)
        assert expired.value.response.status_code == 401
        assert b"expired" in expired.value.response.body
        with pytest.raises(InvalidStatus) as unknown:
            await _first_event(server.url, {"Authorization": "Bearer ek_made_up"})
        assert unknown.value.response.status_code == 401


async def test_transcription_client_secret_and_validation_errors() -> None:
    async with SimServer() as server:
        sdk = _sdk(server)
        secret = await sdk.realtime.client_secrets.create(
            session={
                "type": "transcription",
                "audio": {"input": {"transcription": {"model": "gpt-4o-mini-transcribe"}}},
            }
        )
        assert secret.session.type == "transcription"
        created = await _first_event(server.url, {"Authorization": f"Bearer {secret.value}"})
        assert created["session"]["type"] == "transcription"
        transcription = created["session"]["audio"]["input"]["transcription"]
        assert transcription["model"] == "gpt-4o-mini-transcribe"
        with pytest.raises(openai.BadRequestError) as bad:
            await sdk.realtime.client_secrets.create(expires_after={"seconds": 5})
        assert bad.value.code == "integer_below_min_value"
        assert bad.value.param == "expires_after.seconds"
        with pytest.raises(openai.BadRequestError) as unknown:
            unknown_key: Any = {"type": "realtime", "voice": "x"}  # not a session field
            await sdk.realtime.client_secrets.create(session=unknown_key)
        assert unknown.value.code == "unknown_parameter"


async def test_calls_are_refused_clearly_and_404s_name_the_method() -> None:
    async with SimServer() as server:
        with pytest.raises(openai.APIStatusError) as calls:
            await _sdk(server).post("/realtime/calls", cast_to=httpx.Response, body={})
        assert calls.value.status_code == 501
        assert "not supported by the local server" in calls.value.message
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            for method, path in (("POST", "/v1/nothing"), ("DELETE", "/v1/realtime/calls")):
                response = await http.request(method, path)
                assert response.status_code == 404 and response.reason_phrase == "Not Found"
                assert response.json()["error"]["message"] == f"Invalid URL ({method} {path})"
                assert response.headers.get_list("content-type") == ["application/json"]
            missing = await http.post("/v1/realtime/client_secrets", json={})
            assert missing.status_code == 401 and missing.reason_phrase == "Unauthorized"
            assert missing.headers.get_list("content-type") == ["application/json"]
            assert missing.json()["error"]["code"] == "missing_api_key"


@pytest.mark.parametrize(
    ("query", "status", "text"),
    [
        ("?call_id=rtc_123", 404, "Call 'rtc_123' not found"),
        ("?intent=transcription&model=gpt-realtime", 400, "must not provide a model parameter"),
        ("?intent=quicksilver", 400, "Invalid value: 'quicksilver'"),
    ],
)
async def test_handshake_refusals(query: str, status: int, text: str) -> None:
    async with SimServer() as server:
        with pytest.raises(InvalidStatus) as refused:
            await _first_event(server.url + query, {"Authorization": "Bearer x"})
        response = refused.value.response
        assert response.status_code == status
        assert text in json.loads(response.body)["error"]["message"]
        assert response.headers.get_all("Content-Type") == ["application/json"]
