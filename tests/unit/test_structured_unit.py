"""Structured output, the pure parts: the JSON Schema checker, the prompted JSON protocol, the TRT-LLM
guided inputs, OpenAI's response_format and extra body fields."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from steerlm.errors import ConfigurationError, StructuredOutputError
from steerlm.json_schema import schema_errors
from steerlm.params import GenerationParams
from steerlm.structured import check_strict, extract_json_schema, json_instructions
from steerlm.tools import ToolSpec, tool_call_schema
from steerlm.transport.base import spec_from_config
from steerlm.transport.openai.body import extra_fields, response_format
from steerlm.transport.signatures import make_codec
from steerlm_testing.scripted_tools import schema_reply

SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["a", "b"], "additionalProperties": False,
    "properties": {"a": {"type": "integer", "minimum": 1}, "b": {"$ref": "#/$defs/B"},
                   "c": {"anyOf": [{"type": "string", "maxLength": 2}, {"type": "null"}]}},
    "$defs": {"B": {"type": "array", "items": {"enum": ["x", "y"]}, "minItems": 1}},
}


@pytest.mark.parametrize(("value", "errors"), [
    ({"a": 1, "b": ["x"]}, []),
    ({"a": 1.0, "b": ["y"], "c": None}, []),
    ({"a": 0, "b": []}, ["/a: 0 violates minimum 1", "/b: fewer than minItems 1 items"]),
    ({"a": True, "b": ["z"], "d": 1}, ["/a: expected integer, got bool", "/b/0: 'z' is not one of ['x', 'y']",
                                      "/: property 'd' is not allowed (additionalProperties is false)"]),
    ({"b": ["x"], "c": "long"}, ["/: missing required property 'a'", "/c: matches 0 of the anyOf options"]),
    ([1], ["/: expected object, got list"]),
])
def test_schema_errors(value: Any, errors: list[str]) -> None:
    assert schema_errors(value, SCHEMA) == errors


def test_check_strict_raises_a_typed_error_listing_the_mismatches() -> None:
    assert check_strict({"a": 2, "b": ["x"]}, SCHEMA) == {"a": 2, "b": ["x"]}
    with pytest.raises(StructuredOutputError, match="does not match its JSON schema") as caught:
        check_strict({"a": 0}, SCHEMA)
    assert isinstance(caught.value, ValueError) and caught.value.value == {"a": 0}
    assert caught.value.errors == ("/: missing required property 'b'", "/a: 0 violates minimum 1")


def test_the_prompted_protocol_round_trips_its_schema() -> None:
    prompt = "<extra_id_0>System\n" + json_instructions(SCHEMA) + "\n<extra_id_1>User\nhi\n<extra_id_1>Assistant\n"
    assert extract_json_schema(prompt) == SCHEMA
    assert extract_json_schema("no block") is None


@pytest.mark.parametrize("schema", [
    SCHEMA,
    {"type": "object", "properties": {"n": {"type": "number", "exclusiveMaximum": 0}, "s": {"minLength": 12}},
     "required": ["n", "s"]},
    {"allOf": [{"$ref": "#/definitions/P"}], "definitions": {"P": {"type": "object", "required": ["p"],
                                                                  "properties": {"p": {"const": 7}}}}},
    {"type": "array", "items": {"type": "boolean"}, "minItems": 3},
])
def test_the_scripted_model_answers_any_schema_with_an_instance(schema: dict[str, Any]) -> None:
    reply = schema_reply("<extra_id_1>User\nsome words\n<extra_id_1>Assistant\n", schema)
    assert schema_errors(json.loads(reply), schema) == []


def test_a_tool_call_schema_hoists_the_definitions_its_references_point_to() -> None:
    params = {"type": "object", "required": ["x"], "properties": {"x": {"$ref": "#/$defs/X"}},
              "$defs": {"X": {"type": "integer"}}}
    schema = tool_call_schema([ToolSpec("f", parameters=params)])
    assert schema["$defs"] == {"X": {"type": "integer"}}
    assert "$defs" not in schema["properties"]["tool_calls"]["items"]["properties"]["arguments"]
    assert schema_errors({"tool_calls": [{"name": "f", "arguments": {"x": 3}}]}, schema) == []
    assert schema_errors({"tool_calls": [{"name": "f", "arguments": {"x": "3"}}]}, schema) != []


def _trtllm(guided: bool) -> Any:
    names = ["text_input", "max_tokens", *(["guided_decoding_guide_type", "guided_decoding_guide"] if guided else [])]
    config = {"max_batch_size": 8,
              "input": [{"name": n, "data_type": "TYPE_INT32" if n == "max_tokens" else "TYPE_STRING", "dims": [1],
                         "optional": n.startswith("guided")} for n in names],
              "output": [{"name": "text_output", "data_type": "TYPE_STRING", "dims": [-1]}]}
    return make_codec(spec_from_config(config, "ensemble"), "trtllm_ensemble")


def test_trtllm_sends_the_guide_only_where_the_ensemble_declares_it() -> None:
    params = GenerationParams(guided_json={"type": "object"}, max_tokens=4)
    guided = _trtllm(True)
    arrays, _ = guided.encode_params(params, (), 2, stream=False)
    assert guided.takes_guided and arrays["guided_decoding_guide_type"].tolist() == [[b"json_schema"]] * 2
    assert json.loads(arrays["guided_decoding_guide"][0, 0]) == {"type": "object"}
    assert arrays["guided_decoding_guide"].dtype == np.object_
    plain = _trtllm(False)
    arrays, dropped = plain.encode_params(params, (), 1, stream=False)
    assert not plain.takes_guided and "guided_decoding_guide" not in arrays and dropped == []
    with pytest.raises(ConfigurationError, match="extra_body is merged into an OpenAI-compatible request"):
        plain.encode_params(GenerationParams(extra_body={"a": 1}), (), 1, stream=False)
    with pytest.raises(ConfigurationError, match="set by guided_json"):
        guided.encode_params(params.merge(extra_inputs={"guided_decoding_guide": "{}"}), (), 1, stream=False)


def test_response_format() -> None:
    schema = json.dumps({"title": "My Reply!", "type": "object", "properties": {}})
    assert response_format(schema, None) == {"type": "json_schema", "json_schema": {
        "name": "My_Reply_", "schema": json.loads(schema)}}
    assert response_format(json.dumps({"type": "array"}), True)["json_schema"] == {
        "name": "response", "schema": {"type": "array"}, "strict": True}
    assert response_format(json.dumps({"type": "object"}), None) == {"type": "json_object"}
    assert response_format(json.dumps({"type": "object"}), True)["type"] == "json_schema"


def test_extra_fields_and_their_checks() -> None:
    params = GenerationParams(extra_inputs={"min_tokens": 2}, extra_body='{"structured_outputs": {"json": {}}}')
    assert extra_fields(params, {"model"}) == {"min_tokens": 2, "structured_outputs": {"json": {}}}
    with pytest.raises(ConfigurationError, match="would overwrite what steerlm sets"):
        extra_fields(params, {"min_tokens"})
    with pytest.raises(ConfigurationError, match="extra_body must be a JSON object"):
        GenerationParams(extra_body="[1]")
    with pytest.raises(ConfigurationError, match="guided_strict must be True or False"):
        GenerationParams(guided_strict="yes")  # type: ignore[arg-type]
