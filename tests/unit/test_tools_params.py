from __future__ import annotations

import pytest

from steerlm import ConfigurationError, GenerationParams, format_prompt
from steerlm.tools import (
    ToolCall,
    ToolSpec,
    extract_offered_tools,
    parse_tool_reply,
    render_tool_calls,
    tool_instructions,
)

WEATHER = ToolSpec("get_weather", "Weather for a city",
                   {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})


def test_instructions_round_trip_through_a_rendered_prompt() -> None:
    system = "Be brief.\n\n" + tool_instructions([WEATHER])
    prompt = format_prompt([{"role": "system", "content": system}, {"role": "user", "content": "hi"}],
                           profile="Llama3-70B-PPO-Chat")
    assert extract_offered_tools(prompt) == [WEATHER.as_dict()]
    assert tool_instructions([WEATHER], "none") == ""
    assert "must call the tool 'get_weather'" in tool_instructions([WEATHER], "get_weather")
    assert "must call at least one" in tool_instructions([WEATHER], "any")


def test_parse_valid_call_with_surrounding_text_and_fences() -> None:
    reply = 'Sure.\n```json\n{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}\n```'
    parsed = parse_tool_reply(reply)
    assert [(c.name, dict(c.arguments)) for c in parsed.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert parsed.content == "Sure."
    assert parsed.tool_calls[0].id.startswith("call_")
    assert not parsed.invalid_tool_calls


def test_parse_string_arguments_and_bare_object() -> None:
    parsed = parse_tool_reply('{"name": "f", "arguments": "{\\"x\\": 1}"}')
    assert dict(parsed.tool_calls[0].arguments) == {"x": 1}


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ('{"tool_calls": [{"name": "f", "arguments": "{bad"}]}', "not valid JSON"),
        ('{"tool_calls": [{"arguments": {}}]}', "no 'name'"),
        ('{"tool_calls": [{"name": "f", "arguments": [1]}]}', "must be a JSON object"),
        ('{"tool_calls": [{"name": "f", "arguments": {"x": 1}', "not valid JSON"),
    ],
)
def test_malformed_calls_become_invalid_tool_calls(reply: str, error: str) -> None:
    parsed = parse_tool_reply(reply)
    assert not parsed.tool_calls
    assert error in parsed.invalid_tool_calls[0].error


def test_plain_text_has_no_calls() -> None:
    assert parse_tool_reply("Just an answer {not json}").content == "Just an answer {not json}"


def test_assistant_tool_calls_render_as_protocol_json() -> None:
    call = ToolCall("get_weather", {"city": "Oslo"}, id="c1")
    prompt = format_prompt(
        [{"role": "user", "content": "w?"}, {"role": "assistant", "content": "", "tool_calls": [call]},
         {"role": "tool", "content": "rain", "name": "get_weather", "tool_call_id": "c1"}],
        profile="Llama3-70B-PPO-Chat",
    )
    assert f"<extra_id_1>Assistant\n{render_tool_calls([call])}\n<extra_id_1>User\nTool result" in prompt


def test_generation_params_validate_and_merge() -> None:
    params = GenerationParams(max_tokens=10, stop=("a", "a", "b"))
    assert params.stop == ("a", "b")
    merged = params.merge(temperature=0.5, max_tokens=None, stop=["x"])
    assert (merged.max_tokens, merged.temperature, merged.stop) == (10, 0.5, ("x",))
    assert params.with_stop(["<extra_id_1>"]).stop == ("a", "b", "<extra_id_1>")
    for bad in ({"max_tokens": 0}, {"top_p": 1.5}, {"temperature": -1.0}, {"top_k": True}, {"stop": [""]}):
        with pytest.raises(ConfigurationError):
            GenerationParams(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="unknown generation parameter"):
        params.merge(beam_width=2)
