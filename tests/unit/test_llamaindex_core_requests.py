"""steerlm.requests and steerlm.fields: option layers and fields (shared by the adapters), tool instructions."""

from __future__ import annotations

from typing import Any

import pytest

from steerlm import ConfigurationError, GenerationParams, Message, format_prompt
from steerlm.fields import SteeringFields
from steerlm.profiles import STEERLM_SYSTEM_PROMPT, get_profile
from steerlm.requests import ATTRIBUTE_NAMES, refine_options, resolve_options, split_options, with_tool_instructions
from steerlm.tools import ToolSpec, extract_offered_tools, tool_instructions

F1 = "Llama2-70B-SteerLM-Chat"
WEATHER = ToolSpec("get_weather", "Weather for a city",
                   {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


def test_attribute_names_are_the_union_of_every_set() -> None:
    assert set(ATTRIBUTE_NAMES) == {"quality", "toxicity", "humor", "creativity", "helpfulness", "correctness",
                                    "coherence", "complexity", "verbosity", "violence", "not_appropriate"}


def test_steering_fields_are_one_per_attribute_plus_the_dict_form() -> None:
    fields = SteeringFields.model_fields
    assert set(fields) == {*ATTRIBUTE_NAMES, "attributes"}
    assert all(f.default is None for f in fields.values())
    assert fields["verbosity"].description == (
        "Steering attribute (HelpSteer 0–4, HelpSteer2 0–4); None keeps the profile's default.")
    assert fields["violence"].description == "Steering attribute (OASST 0–9); None keeps the profile's default."
    assert SteeringFields(verbosity=1).model_dump(exclude_none=True) == {"verbosity": 1}


def test_layers_later_wins_and_per_attribute_beats_dict_within_a_layer() -> None:
    options = resolve_options(
        F1,
        {"max_tokens": 10, "temperature": 0.5, "verbosity": 1, "attributes": {"humor": 2}, "stop": ["a"]},
        {"max_tokens": 20, "attributes": {"verbosity": 3, "creativity": 1}, "creativity": 4, "stop": ["b"]},
        None,
        {"temperature": None},
    )
    assert options.params == GenerationParams(max_tokens=20, temperature=0.5, stop=("b",))
    assert options.attributes["verbosity"] == 3
    assert options.attributes["humor"] == 2
    assert options.attributes["creativity"] == 4
    assert next(iter(options.attributes)) == "quality"  # label order, defaults filled in


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ({"verbosity": 5}, "from 0 to 4"),
        ({"violence": 1}, "unknown steering attribute 'violence'"),
        ({"verbostiy": 1}, "unknown option"),
        ({"attributes": "verbosity=1"}, "attributes must be a dict"),
        ({"top_p": 2.0}, "top_p"),
    ],
)
def test_invalid_options_raise_configuration_error(layer: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        resolve_options(F1, layer)


def test_attributes_on_a_profile_without_any_are_rejected_and_reward_models_refused() -> None:
    assert resolve_options("NV-Llama2-70B-RLHF-Chat", {"verbosity": None}).attributes == {}
    with pytest.raises(ConfigurationError, match="takes no steering attributes"):
        resolve_options("NV-Llama2-70B-RLHF-Chat", {"verbosity": 1})
    with pytest.raises(ConfigurationError, match="reward model"):
        resolve_options("Llama2-13B-SteerLM-RM", {})


def test_split_options() -> None:
    options, rest = split_options({"verbosity": 1, "max_tokens": 3, "attributes": {}, "context": "c", "tools": []})
    assert options == {"verbosity": 1, "max_tokens": 3, "attributes": {}}
    assert rest == {"context": "c", "tools": []}


def test_tool_instructions_follow_the_default_system_text_when_the_conversation_has_none() -> None:
    messages = with_tool_instructions([Message("user", "weather in Paris?")], [WEATHER], None, F1)
    assert messages[0] == Message("system", f"{STEERLM_SYSTEM_PROMPT}\n\n{tool_instructions([WEATHER])}")
    prompt = format_prompt(messages, profile=F1)
    assert extract_offered_tools(prompt) == [WEATHER.as_dict()]
    # empty default system (NeMo chat): the instructions are the whole system text
    plain = with_tool_instructions([Message("user", "hi")], [WEATHER], "auto", "Llama3-70B-PPO-Chat")
    assert plain[0].content == tool_instructions([WEATHER])


def test_tool_instructions_join_an_existing_system_turn_and_none_is_a_no_op() -> None:
    items = [Message("system", "Be brief."), Message("user", "hi")]
    messages = with_tool_instructions(items, [WEATHER], "get_weather", F1)
    assert [m.role for m in messages] == ["system", "system", "user"]
    prompt = format_prompt(messages, profile=F1)
    assert prompt.startswith("<extra_id_0>System\nBe brief.\n\nYou can call the following tools.")
    assert with_tool_instructions(items, [WEATHER], "none", F1) == items
    assert with_tool_instructions(items, [], None, F1) == items


@pytest.mark.parametrize("fields, call", [
    ({}, {}),
    ({"verbosity": 1, "max_tokens": 5}, {}),
    ({"verbosity": 1, "attributes": {"humor": 2}}, {"attributes": {"verbosity": 3}, "temperature": 0.5}),
    ({"stop": ["x"]}, {"stop": ["y", "z"], "verbosity": 0}),
    ({"attributes": {"verbosity": 2}, "verbosity": 4}, {"creativity": 1, "attributes": {"creativity": 3}}),
])
def test_refine_options_equals_resolving_every_layer(fields: dict[str, Any], call: dict[str, Any]) -> None:
    base = resolve_options(F1, fields)
    assert refine_options(base, get_profile(F1), call) == resolve_options(F1, fields, call)


@pytest.mark.parametrize("call", [{"verbosity": 7}, {"attributes": {"violence": 1}}, {"temperature": -1},
                                  {"bogus": 1}, {"attributes": "verbosity=4"}, {"verbosity": True}])
def test_refine_options_rejects_what_resolve_options_rejects(call: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as resolved:
        resolve_options(F1, {}, call)
    with pytest.raises(ConfigurationError) as refined:
        refine_options(resolve_options(F1, {}), get_profile(F1), call)
    assert str(refined.value) == str(resolved.value)
