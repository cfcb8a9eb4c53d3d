"""`model_kwargs` (LangChain) / `additional_kwargs` (LlamaIndex): extra server inputs, checked against the
inputs the model declares and sent on the wire (request log)."""

from __future__ import annotations

import pytest
from llama_index.core.base.llms.types import ChatMessage

from langchain_steerlm import ChatSteerLM
from llamaindex_steerlm import SteerLM
from steerlm.errors import ConfigurationError
from steerlm_testing import LocalServer

MODEL = "Llama2-70B-SteerLM-Chat"


def sent(server: LocalServer, name: str) -> object:
    return server.last_request(MODEL)["inputs"][name]["data"][0]


def test_langchain_model_kwargs_are_sent_as_declared(server: LocalServer) -> None:
    model = ChatSteerLM(model=MODEL, url=server.grpc_url, max_retries=0,
                        model_kwargs={"task_id": "lora-7", "no_repeat_ngram_size": 3})
    model.invoke("hi")
    assert sent(server, "task_id") in ("lora-7", ["lora-7"]) and sent(server, "no_repeat_ngram_size") in (3, [3])
    model.invoke("hi", extra_inputs={"task_id": "lora-8"})  # per call, replacing the field's
    assert sent(server, "task_id") in ("lora-8", ["lora-8"])


def test_langchain_unknown_input_names_the_declared_ones(server: LocalServer) -> None:
    model = ChatSteerLM(model=MODEL, url=server.grpc_url, max_retries=0, model_kwargs={"nope": "x"})
    with pytest.raises(ConfigurationError, match=r"declares no input 'nope'.*'prompts'") as info:
        model.invoke("hi")
    assert "task_id" in str(info.value)
    with pytest.raises(ConfigurationError, match="set by a generation parameter"):
        ChatSteerLM(model=MODEL, url=server.grpc_url, max_retries=0, max_tokens=5,
                    model_kwargs={"max_output_len": 9}).invoke("hi")


async def test_llamaindex_additional_kwargs(server: LocalServer) -> None:
    llm = SteerLM(model=MODEL, url=server.grpc_url, max_retries=0, additional_kwargs={"task_id": "lora-9"})
    await llm.achat([ChatMessage(role="user", content="hi")])
    assert sent(server, "task_id") in ("lora-9", ["lora-9"])
    bad = SteerLM(model=MODEL, url=server.grpc_url, max_retries=0, additional_kwargs={"nope": 1})
    with pytest.raises(ConfigurationError, match="declares no input 'nope'"):
        bad.complete("hi")
