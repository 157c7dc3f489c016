"""Where the Gemini client connects and how it authenticates (no network)."""

from __future__ import annotations

import pytest

from vocalis.providers.base import SessionOptions, ToolSpec, TurnDetection
from vocalis.providers.gemini import GeminiRealtimeModel, VertexAI

SERVICE = "google.ai.generativelanguage.v1beta.GenerativeService"


def test_developer_api_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY", "google-key")
    model = GeminiRealtimeModel()
    assert model.url == f"wss://generativelanguage.googleapis.com/ws/{SERVICE}.BidiGenerateContent"
    assert model.headers() == {"x-goog-api-key": "google-key"}
    monkeypatch.setenv("GEMINI_API_KEY", "gemini-key")
    assert GeminiRealtimeModel().headers() == {"x-goog-api-key": "gemini-key"}
    assert "gemini-key" not in repr(GeminiRealtimeModel())


def test_ephemeral_token_uses_the_constrained_method() -> None:
    model = GeminiRealtimeModel(
        api_key="auth_tokens/abc", base_url="https://127.0.0.1:9", api_version="v1alpha"
    )
    assert model.url == (
        "wss://127.0.0.1:9/ws/google.ai.generativelanguage.v1alpha.GenerativeService"
        ".BidiGenerateContentConstrained"
    )
    assert model.headers() == {"Authorization": "Token auth_tokens/abc"}


def test_vertex_ai_endpoint_model_path_and_fresh_token() -> None:
    tokens = iter(["t1", "t2"])
    vertex = VertexAI("my-project", "europe-west4", access_token=lambda: next(tokens))
    model = GeminiRealtimeModel("gemini-live-2.5-flash", vertex=vertex)
    assert model.url == (
        "wss://europe-west4-aiplatform.googleapis.com/ws/"
        "google.cloud.aiplatform.v1beta1.LlmBidiService/BidiGenerateContent"
    )
    assert model.headers() == {"Authorization": "Bearer t1"}
    assert model.headers() == {"Authorization": "Bearer t2"}  # fresh per connection
    setup = model.setup_for(SessionOptions(), None)["setup"]
    assert setup["model"] == (
        "projects/my-project/locations/europe-west4/publishers/google/models/gemini-live-2.5-flash"
    )
    assert "t1" not in repr(model) and "t1" not in repr(vertex)


def test_setup_carries_the_session_options() -> None:
    model = GeminiRealtimeModel("gemini-x", api_key="k")
    options = SessionOptions(
        instructions="Be brief.",
        voice="Kore",
        turn_detection=TurnDetection(silence_duration_ms=400, interrupt_response=False),
        tools=(
            ToolSpec("get_weather", "Weather.", {"type": "object", "properties": {"city": {}}}),
        ),
    )
    setup = model.setup_for(options, "handle-1")["setup"]
    assert setup["model"] == "models/gemini-x"
    assert setup["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    voice = setup["generationConfig"]["speechConfig"]["voiceConfig"]["prebuiltVoiceConfig"]
    assert voice == {"voiceName": "Kore"}
    assert setup["realtimeInputConfig"] == {
        "automaticActivityDetection": {"disabled": False, "silenceDurationMs": 400},
        "activityHandling": "NO_INTERRUPTION",
    }
    assert setup["sessionResumption"] == {"handle": "handle-1"}
    assert setup["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"
    manual = model.setup_for(SessionOptions(turn_detection=None), None)["setup"]
    assert manual["realtimeInputConfig"] == {"automaticActivityDetection": {"disabled": True}}
