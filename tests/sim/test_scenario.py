"""Scenario files: schema, shorthands, examples, and the brain's decisions."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from vocalis.sim.brain import (
    Brain,
    PlannedCall,
    PlannedMessage,
    ScriptCursor,
    render,
    say_exactly,
)
from vocalis.sim.conversation import Item
from vocalis.sim.scenario import FunctionCallSpec, MessageSpec, Scenario, load_scenario

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "scenarios"
TOOLS = [{"type": "function", "name": "get_weather"}]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_scenarios_load(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.responses


def test_preamble_tool_answer_example() -> None:
    scenario = load_scenario(EXAMPLES / "preamble_tool_answer.yaml")
    first, _answer = scenario.responses
    assert isinstance(first.items[0], MessageSpec)
    assert first.items[0].text == "Let me check the weather for you."
    call = first.items[1]
    assert isinstance(call, FunctionCallSpec)
    assert (call.name, call.arguments_json) == ("get_weather", '{"city": "Paris"}')
    brain = Brain(scenario)
    plan = brain.plan(
        instructions=None, out_of_band=False, items=[], tools=TOOLS, tool_choice="auto"
    )
    assert plan.items == (
        PlannedMessage("Let me check the weather for you.", "commentary"),
        PlannedCall("get_weather", '{"city": "Paris"}'),
    )
    output = Item(
        id="o",
        type="function_call_output",
        call_id="c",
        output='{"sky": "sunny", "temperature_c": 22}',
    )
    plan = brain.plan(
        instructions=None, out_of_band=False, items=[output], tools=TOOLS, tool_choice="auto"
    )
    assert plan.items == (
        PlannedMessage("It is sunny in Paris right now, at 22 degrees.", "final_answer"),
    )


def test_json_and_shorthands(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(
        '{"responses": ["Just a line.", {"say": "Another."}, '
        '{"items": [{"text": "typed"}, {"name": "f", "arguments": "{}"}]}]}'
    )
    scenario = load_scenario(path)
    kinds = [[type(i).__name__ for i in r.items] for r in scenario.responses]
    assert kinds == [["MessageSpec"], ["MessageSpec"], ["MessageSpec", "FunctionCallSpec"]]


@pytest.mark.parametrize(
    "data",
    [
        {"responses": [{"say": "x", "typo": 1}]},
        {"responses": [{"say": "x", "faults": [{"kind": "drop"}]}]},  # no position
        {"responses": [{"say": "x", "faults": [{"kind": "explode", "after_event": "x"}]}]},
        {"responses": [{"say": "x", "ordering": "random"}]},
        {"responses": [{"items": [{"say": "x", "leading_silence_ms": -1}]}]},
        {"server": {"script_scope": "global"}},
    ],
)
def test_invalid_scenarios_are_rejected(data: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Scenario.model_validate(data)


def test_slow_first_byte_defaults_to_before_created() -> None:
    scenario = Scenario.model_validate(
        {"responses": [{"say": "x", "faults": [{"kind": "slow_first_byte", "seconds": 1}]}]}
    )
    assert scenario.responses[0].faults[0].before_response_created


@pytest.mark.parametrize(
    ("instructions", "expected"),
    [
        ("Say exactly: Hello there.", "Hello there."),
        ('say verbatim the following text: "Thanks for calling."', "Thanks for calling."),
        ("You are helpful. SAY EXACTLY:   Bye.", "Bye."),
        ("Say hello.", None),
        (None, None),
    ],
)
def test_say_exactly(instructions: str | None, expected: str | None) -> None:
    assert say_exactly(instructions) == expected


def test_render_placeholders() -> None:
    assert render("{output}|{user}", output="raw", user="me") == "raw|me"
    assert render("{result[a][0]}", output='{"a": [5]}', user=None) == "5"
    assert (
        render("{result[missing]} {other}", output="{}", user=None) == "{result[missing]} {other}"
    )


def test_round_robin_and_user_transcript_once() -> None:
    scenario = Scenario.model_validate({"responses": [{"user_transcript": "hi", "say": "a"}]})
    brain = Brain(scenario)
    assert brain.take_user_transcript() == "hi"
    assert brain.take_user_transcript() is None
    brain.plan(instructions=None, out_of_band=False, items=[], tools=[], tool_choice="auto")
    texts = [
        brain.plan(instructions=None, out_of_band=False, items=[], tools=[], tool_choice="auto")
        .items[0]
        .text  # type: ignore[union-attr]
        for _ in range(5)
    ]
    sentences = scenario.brain.sentences
    assert texts == [*sentences, sentences[0]]


def test_tool_choice_none_skips_calls() -> None:
    scenario = load_scenario(EXAMPLES / "preamble_tool_answer.yaml")
    plan = Brain(scenario).plan(
        instructions=None, out_of_band=False, items=[], tools=TOOLS, tool_choice="none"
    )
    assert [type(i).__name__ for i in plan.items] == ["PlannedMessage"]
    assert plan.notes == ("skipped call 'get_weather': tool not available",)


def test_a_shared_cursor_is_one_script_for_all_brains() -> None:
    scenario = Scenario.model_validate(
        {"responses": [{"user_transcript": "one", "say": "a"}, {"say": "b"}]}
    )
    cursor = ScriptCursor(scenario)
    first, second = Brain(scenario, cursor), Brain(scenario, cursor)

    def answer(brain: Brain) -> str:
        plan = brain.plan(
            instructions=None, out_of_band=False, items=[], tools=[], tool_choice="auto"
        )
        item = plan.items[0]
        assert isinstance(item, PlannedMessage)
        return item.text

    assert first.take_user_transcript() == "one"
    assert second.take_user_transcript() is None  # handed out once per script, not per brain
    assert (answer(first), answer(second)) == ("a", "b")
    assert answer(first) == scenario.brain.sentences[0]
    assert answer(second) == scenario.brain.sentences[1]  # the round robin is shared too
    assert answer(Brain(scenario)) == "a"  # an own cursor starts from the top
