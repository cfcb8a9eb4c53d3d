"""Guided decoding: structured output and required tool calls send a JSON schema the server enforces.

Triton's vLLM backend (local reproduction, scripted model) takes ``guided_decoding`` in
``sampling_parameters``; its scripted model then answers with a JSON instance of the schema (strings are
words of the last user turn), as guided decoding would. A NeMo-signature model has no guided input: the
schema is not sent and the prompted protocol is the fallback.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from langchain_steerlm import ChatSteerLM
from steerlm_testing import LocalServer

pytestmark = [pytest.mark.timeout(180)]

PROFILE = "Llama2-70B-SteerLM-Chat"
VLLM = "vllm_model"


class Joke(BaseModel):
    """A joke."""

    setup: str = Field(description="the setup")
    punchline: str = Field(description="the punchline")
    rating: int = Field(description="how funny, 1-5")


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"It is sunny in {city}."


@tool
def get_time(zone: str) -> str:
    """Get the time in a zone."""
    return zone


@pytest.fixture
def server(current_server: LocalServer) -> LocalServer:
    return current_server


def guide_sent(server: LocalServer) -> Any:
    sampling = json.loads(server.last_request(VLLM)["inputs"]["sampling_parameters"]["data"][0])
    return json.loads(sampling["guided_decoding"])["json"] if "guided_decoding" in sampling else None


def vllm(server: LocalServer) -> ChatSteerLM:
    return ChatSteerLM(model=VLLM, profile=PROFILE, url=server.grpc_url, max_retries=0)


@pytest.mark.parametrize("method", ["json_mode", "json_schema"])
def test_json_methods_send_the_schema_and_return_the_parsed_object(server: LocalServer, method: str) -> None:
    joke = vllm(server).with_structured_output(Joke, method=method).invoke("Tell a joke about cats")
    assert joke == Joke(setup="cats", punchline="about", rating=3)  # an instance of the schema, built by it
    assert guide_sent(server) == Joke.model_json_schema()
    prompt = server.last_request(VLLM)["inputs"]["text_input"]["data"][0]
    assert "<json_schema>" in prompt  # the prompted protocol too: what the guided model should fill in


def test_function_calling_guides_the_tool_call(server: LocalServer) -> None:
    joke = vllm(server).with_structured_output(Joke, method="function_calling").invoke("Tell a joke about owls")
    assert isinstance(joke, Joke) and joke.setup == "owls"
    guide = guide_sent(server)
    call = guide["properties"]["tool_calls"]["items"]
    assert call["properties"]["name"] == {"const": "Joke"}
    assert set(call["properties"]["arguments"]["required"]) == {"setup", "punchline", "rating"}


def test_a_named_tool_choice_is_guided_and_auto_is_not(server: LocalServer) -> None:
    model = vllm(server)
    reply = model.bind_tools([get_weather, get_time], tool_choice="get_time").invoke("What time is it in Oslo")
    assert reply.tool_calls[0]["name"] == "get_time" and reply.tool_calls[0]["args"] == {"zone": "Oslo"}
    assert guide_sent(server)["properties"]["tool_calls"]["items"]["properties"]["name"] == {"const": "get_time"}
    anyone = model.bind_tools([get_weather, get_time], tool_choice="any").invoke("Weather in Rome")
    assert anyone.tool_calls and [o["properties"]["name"]["const"] for o in
                                  guide_sent(server)["properties"]["tool_calls"]["items"]["anyOf"]] == [
        "get_weather", "get_time"]
    model.bind_tools([get_weather]).invoke("Weather in Rome")
    assert guide_sent(server) is None  # "auto": the model may answer in prose


@pytest.mark.parametrize("method", ["function_calling", "json_schema", "json_mode"])
def test_a_server_without_guided_decoding_falls_back_to_the_prompted_protocol(server: LocalServer,
                                                                              method: str) -> None:
    model = ChatSteerLM(model="megatron-deployable", profile=PROFILE, url=server.grpc_url, max_retries=0)
    joke = model.with_structured_output(Joke, method=method, strict=True).invoke("Tell a joke about cats")
    assert isinstance(joke, Joke) and joke.setup == "cats"
    inputs = server.last_request("megatron-deployable")["inputs"]
    assert "guided" not in json.dumps(list(inputs))
    assert ("<tools>" if method == "function_calling" else "<json_schema>") in inputs["prompts"]["data"][0]


@pytest.mark.parametrize("mode", ["sync", "async", "stream"])
async def test_llamaindex_structured_predict_is_guided(server: LocalServer, mode: str) -> None:
    from llama_index.core.prompts import PromptTemplate

    from llamaindex_steerlm import SteerLM

    llm = SteerLM(model=VLLM, profile=PROFILE, url=server.grpc_url, max_retries=0)
    prompt = PromptTemplate("Tell a joke about {topic}")
    if mode == "sync":
        joke = llm.structured_predict(Joke, prompt, topic="ducks")
    elif mode == "async":
        joke = await llm.astructured_predict(Joke, prompt, topic="ducks")
    else:
        parts = list(llm.stream_structured_predict(Joke, prompt, topic="ducks"))
        joke = parts[-1]
    assert joke.setup == "ducks" and joke.punchline == "about"  # type: ignore[union-attr]
    if mode == "stream":  # LlamaIndex's streaming program does not require the call: no guide, the protocol
        assert guide_sent(server) is None and type(joke).__name__ in ("Joke", "FlexibleJoke")
        return
    assert isinstance(joke, Joke)
    assert guide_sent(server)["properties"]["tool_calls"]["items"]["properties"]["name"] == {"const": "Joke"}
