"""Guided decoding on the TensorRT-LLM ensemble signature (local reproduction, scripted model).

``ensemble-guided`` / ``ensemble-guided-streaming`` declare the optional ``guided_decoding_guide_type`` /
``guided_decoding_guide`` inputs (tensorrtllm_backend v0.17+): the client sees them in the model config and
sends ``json_schema`` + the schema; the scripted model answers with a JSON instance of any schema it gets.
``ensemble`` (v0.12–v0.16 inputs) declares neither: nothing guided is sent and the prompted protocol is the
fallback.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from langchain_steerlm import ChatSteerLM, SteerLMStructuredOutputError
from steerlm import GenerationParams, SteerLMClient, StructuredOutputError
from steerlm.json_schema import schema_errors
from steerlm_testing import LocalServer

pytestmark = [pytest.mark.timeout(180)]

PROFILE = "Llama2-70B-SteerLM-Chat"
GUIDED = ("ensemble-guided", "ensemble-guided-streaming")


class Address(BaseModel):
    street: str
    number: int = Field(ge=1, le=9999)


class Person(BaseModel):
    """A person."""

    name: str = Field(min_length=3)
    age: int = Field(ge=18, lt=130)
    tags: list[str] = Field(min_length=2)
    home: Address
    score: float | None = None


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return city


@tool
def get_time(zone: str) -> str:
    """Get the time in a zone."""
    return zone


def sent(server: LocalServer, model: str) -> tuple[str | None, Any]:
    inputs = server.last_request(model)["inputs"]
    kind = inputs.get("guided_decoding_guide_type")
    guide = inputs.get("guided_decoding_guide")
    return (kind["data"][0] if kind else None), (json.loads(guide["data"][0]) if guide else None)


def chat(server: LocalServer, model: str) -> ChatSteerLM:
    return ChatSteerLM(model=model, profile=PROFILE, url=server.grpc_url, max_retries=0)


@pytest.mark.parametrize("model", GUIDED)
@pytest.mark.parametrize("method", ["json_schema", "json_mode", "function_calling"])
def test_structured_output_is_guided_on_the_wire(ensemble_server: LocalServer, model: str, method: str) -> None:
    person = chat(ensemble_server, model).with_structured_output(Person, method=method, strict=True).invoke(
        "Describe someone called Ada")
    assert isinstance(person, Person) and person.age == 18 and len(person.tags) == 2
    kind, guide = sent(ensemble_server, model)
    assert kind == "json_schema"
    if method == "function_calling":
        assert guide["properties"]["tool_calls"]["items"]["properties"]["name"] == {"const": "Person"}
    else:
        assert guide == Person.model_json_schema()


def test_any_json_schema_is_honoured(ensemble_server: LocalServer) -> None:
    schema = {"type": "object", "additionalProperties": False, "required": ["id", "kind", "sizes", "meta"],
              "properties": {"id": {"type": "integer", "exclusiveMinimum": 100},
                             "kind": {"enum": ["a", "b"]},
                             "sizes": {"type": "array", "items": {"type": "number", "maximum": 0}, "minItems": 3},
                             "meta": {"$ref": "#/$defs/meta"}},
              "$defs": {"meta": {"type": "object", "required": ["ok", "note"],
                                 "properties": {"ok": {"type": "boolean"}, "note": {"type": ["string", "null"],
                                                                                     "maxLength": 3}}}}}
    with SteerLMClient(model="ensemble-guided", url=ensemble_server.grpc_url, profile=PROFILE, max_retries=0) as client:
        text = client.generate("<extra_id_1>User\nany words here\n<extra_id_1>Assistant\n",
                               GenerationParams(guided_json=schema, max_tokens=64)).text
    assert schema_errors(json.loads(text), schema) == []


def test_required_tool_calls_are_guided_and_auto_is_not(ensemble_server: LocalServer) -> None:
    model = chat(ensemble_server, "ensemble-guided")
    reply = model.bind_tools([get_weather, get_time], tool_choice="get_time").invoke("What time is it in Oslo")
    assert reply.tool_calls[0]["name"] == "get_time" and reply.tool_calls[0]["args"] == {"zone": "Oslo"}
    assert reply.response_metadata["finish_reason"] == "tool_calls"
    assert sent(ensemble_server, "ensemble-guided")[1]["properties"]["tool_calls"]["items"]["properties"][
        "name"] == {"const": "get_time"}
    model.bind_tools([get_weather, get_time], tool_choice="any").invoke("Weather in Rome")
    assert sent(ensemble_server, "ensemble-guided")[0] == "json_schema"
    model.bind_tools([get_weather]).invoke("Weather in Rome")
    assert sent(ensemble_server, "ensemble-guided") == (None, None)  # "auto": the model may answer in prose


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_an_ensemble_without_the_inputs_falls_back_to_the_prompted_protocol(ensemble_server: LocalServer,
                                                                           method: str) -> None:
    person = chat(ensemble_server, "ensemble").with_structured_output(Person, method=method, strict=True).invoke(
        "Describe someone called Ada")
    assert isinstance(person, Person)
    inputs = ensemble_server.last_request("ensemble")["inputs"]
    assert not [name for name in inputs if name.startswith("guided")]
    assert ("<tools>" if method == "function_calling" else "<json_schema>") in inputs["text_input"]["data"][0]


def test_strict_rejects_a_non_conforming_reply_where_nothing_guides(ensemble_server: LocalServer) -> None:
    """The scripted model says what [[say=...]] tells it (a model ignoring the protocol): unguided, strict=True
    raises a typed error naming the mismatch, strict=False returns the reply as it is."""
    schema = Person.model_json_schema()
    question = 'Describe Ada [[say={"name": "Ada", "age": 7}]]'
    model = chat(ensemble_server, "ensemble")
    with pytest.raises(SteerLMStructuredOutputError) as caught:
        model.with_structured_output(schema, method="json_schema", strict=True).invoke(question)
    assert isinstance(caught.value, StructuredOutputError) and isinstance(caught.value, ValueError)
    assert "/age: 7 violates minimum 18" in caught.value.errors and "missing required property 'tags'" in str(
        caught.value)
    assert model.with_structured_output(schema, method="json_schema").invoke(question) == {"name": "Ada", "age": 7}
    raw = model.with_structured_output(schema, method="json_mode", strict=True, include_raw=True).invoke(question)
    assert raw["parsed"] is None and isinstance(raw["parsing_error"], SteerLMStructuredOutputError)
    call = 'Describe Ada [[say={"tool_calls": [{"name": "Person", "arguments": {"name": "Ada", "age": 7}}]}]]'
    raw = model.with_structured_output(schema, strict=True, include_raw=True).invoke(call)  # function calling
    assert raw["parsed"] is None and "/age: 7 violates minimum 18" in raw["parsing_error"].errors
    guided = chat(ensemble_server, "ensemble-guided").with_structured_output(schema, method="json_schema",
                                                                            strict=True).invoke(question)
    assert schema_errors(guided, schema) == []  # guided decoding wins over what the prompt says


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_llamaindex_structured_predict_and_structured_llm_are_guided(ensemble_server: LocalServer,
                                                                          mode: str) -> None:
    from llama_index.core.base.llms.types import ChatMessage
    from llama_index.core.prompts import PromptTemplate

    from llamaindex_steerlm import SteerLM

    llm = SteerLM(model="ensemble-guided", profile=PROFILE, url=ensemble_server.grpc_url, max_retries=0)
    prompt = PromptTemplate("Describe someone called {name}")
    if mode == "sync":
        person = llm.structured_predict(Person, prompt, name="Grace")
        reply = llm.as_structured_llm(Person).chat([ChatMessage(role="user", content="Describe Grace")])
    else:
        person = await llm.astructured_predict(Person, prompt, name="Grace")
        reply = await llm.as_structured_llm(Person).achat([ChatMessage(role="user", content="Describe Grace")])
    assert isinstance(person, Person) and person.name == "Grace"
    assert isinstance(reply.raw, Person) and reply.raw.name == "Grace"
    assert sent(ensemble_server, "ensemble-guided")[1]["properties"]["tool_calls"]["items"]["properties"][
        "name"] == {"const": "Person"}


@pytest.mark.parametrize(("model", "mode"), [("ensemble", "invoke"), ("ensemble", "ainvoke"),
                                             ("ensemble-streaming", "stream")])
async def test_strict_tools_reject_calls_that_do_not_match_their_schema(ensemble_server: LocalServer, model: str,
                                                                      mode: str) -> None:
    """bind_tools(strict=True) where nothing guides: a call whose arguments miss the tool's schema raises the
    typed error (not returned as if valid); without strict the call comes back as the model made it."""
    question = 'Weather in Oslo [[say={"tool_calls": [{"name": "get_weather", "arguments": {"town": "Oslo"}}]}]]'
    strict = chat(ensemble_server, model).bind_tools([get_weather], strict=True)
    with pytest.raises(SteerLMStructuredOutputError, match="missing required property 'city'"):
        if mode == "invoke":
            strict.invoke(question)
        elif mode == "ainvoke":
            await strict.ainvoke(question)
        else:
            list(strict.stream(question))
    loose = chat(ensemble_server, model).bind_tools([get_weather]).invoke(question)
    assert loose.tool_calls[0]["args"] == {"town": "Oslo"}
    good = strict.invoke("Weather in Oslo")  # the protocol followed: the arguments match
    assert good.tool_calls[0]["args"] == {"city": "Oslo"}


@pytest.mark.parametrize("model", ["ensemble", "ensemble-guided"])
def test_llamaindex_guided_json_field_is_guided_or_prompted(ensemble_server: LocalServer, model: str) -> None:
    from llama_index.core.base.llms.types import ChatMessage

    from llamaindex_steerlm import SteerLM

    schema = Address.model_json_schema()
    llm = SteerLM(model=model, profile=PROFILE, url=ensemble_server.grpc_url, max_retries=0, guided_json=schema)
    reply = llm.chat([ChatMessage(role="user", content="Where does Ada live")])
    assert Address.model_validate_json(reply.message.content or "") == Address(street="live", number=3)
    kind, guide = sent(ensemble_server, model)
    assert (kind, guide) == (("json_schema", schema) if model == "ensemble-guided" else (None, None))
    assert "<json_schema>" in ensemble_server.last_request(model)["inputs"]["text_input"]["data"][0]
