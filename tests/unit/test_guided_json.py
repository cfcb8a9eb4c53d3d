"""`GenerationParams.guided_json`: validated, canonical, sent only where a signature takes it."""

from __future__ import annotations

import json

import pytest

from steerlm.errors import ConfigurationError
from steerlm.params import GenerationParams
from steerlm.tools import ToolSpec, tool_call_schema
from steerlm.transport.vllm_backend import sampling_json


def test_guided_json_is_kept_as_canonical_json_text() -> None:
    assert GenerationParams(guided_json={"type": "object", "a": 1}).guided_json == '{"a": 1, "type": "object"}'
    assert GenerationParams(guided_json='{"type":"object"}').guided_json == '{"type": "object"}'
    hash(GenerationParams(guided_json={"type": "object"}))  # usable as part of a request key


@pytest.mark.parametrize("bad", ["not json", "[1, 2]", 3])
def test_guided_json_rejects_what_is_not_a_schema_object(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="guided_json must be a JSON schema object"):
        GenerationParams(guided_json=bad)  # type: ignore[arg-type]


def test_the_vllm_backend_sends_it_as_guided_decoding() -> None:
    body = json.loads(sampling_json(GenerationParams(guided_json={"type": "object"}), (), logprobs=False))
    assert json.loads(body["guided_decoding"]) == {"json": {"type": "object"}}
    assert "guided_decoding" not in json.loads(sampling_json(GenerationParams(), (), logprobs=False))


def test_tool_call_schema_names_each_tool() -> None:
    one = tool_call_schema([ToolSpec("f", parameters={"type": "object", "properties": {}})])
    assert one["properties"]["tool_calls"]["items"]["properties"]["name"] == {"const": "f"}
    two = tool_call_schema([ToolSpec("f"), ToolSpec("g")])
    assert [o["properties"]["name"]["const"] for o in two["properties"]["tool_calls"]["items"]["anyOf"]] == ["f", "g"]
