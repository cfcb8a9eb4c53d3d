"""`model_kwargs` (LangChain) / `additional_kwargs` (LlamaIndex): extra server inputs, checked against the
inputs the model declares and sent on the wire (request log): scalars, and lists encoded with the declared
dtype and dims (wrong element types, ragged or misshapen values refused before anything is sent)."""

from __future__ import annotations

from typing import Any

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


# ---------------------------------------------------------------------------------------------- list values
def inputs_of(server: LocalServer, model: str) -> dict[str, Any]:
    return server.last_request(model)["inputs"]  # type: ignore[no-any-return]


def test_lists_follow_the_declared_dtype_and_dims_on_the_wire(server: LocalServer) -> None:
    """NeMo deploy: `lora_uids` BYTES dims [-1] -> `[B, n]` (the whole list per row); `bad_words_list` is one
    CSV record per row (`[B, 1]`), as the server `csv.reader`-splits it."""
    model = ChatSteerLM(model=MODEL, url=server.grpc_url, max_retries=0,
                        model_kwargs={"lora_uids": ["a", "b"], "bad_words_list": ["foo", "bar,baz"]})
    model.batch(["hi", "there"])  # one request, two rows
    sent_inputs = inputs_of(server, MODEL)
    assert sent_inputs["lora_uids"] == {"datatype": "BYTES", "shape": [2, 2], "data": ["a", "b", "a", "b"]}
    assert sent_inputs["bad_words_list"] == {"datatype": "BYTES", "shape": [2, 1],
                                             "data": ['foo,"bar,baz"', 'foo,"bar,baz"']}
    model.invoke("hi", extra_inputs={"lora_uids": ("c",)})  # per call; a tuple is a list too
    assert inputs_of(server, MODEL)["lora_uids"] == {"datatype": "BYTES", "shape": [1, 1], "data": ["c"]}


async def test_llamaindex_lists_on_the_trtllm_ensemble(ensemble_server: LocalServer) -> None:
    """TensorRT-LLM's ensemble: `bad_words` BYTES dims [-1] -> `[B, n]`, one word per element (no CSV);
    `end_id` INT32 dims [1] takes a one-element list of integers."""
    llm = SteerLM(model="ensemble", url=ensemble_server.grpc_url, profile=MODEL, max_retries=0,
                  additional_kwargs={"bad_words": ["foo", "bar"], "end_id": [2]})
    await llm.acomplete("hi")
    sent_inputs = inputs_of(ensemble_server, "ensemble")
    assert sent_inputs["bad_words"] == {"datatype": "BYTES", "shape": [1, 2], "data": ["foo", "bar"]}
    assert sent_inputs["end_id"] == {"datatype": "INT32", "shape": [1, 1], "data": [2]}


@pytest.mark.parametrize(("value", "message"), [
    ({"bad_words": ["foo", 3]}, r"'bad_words' is declared BYTES: every element must be one of the strings, "
                                r"got int 3 at position 1"),
    ({"end_id": [1.5]}, r"'end_id' is declared INT32: every element must be one of the integers"),
    ({"end_id": [True]}, r"'end_id' is declared INT32.*got bool"),
    ({"end_id": [1, 2]}, r"'end_id' is declared with dims \[1\] \(per prompt\); a value of shape \[2\]"),
    ({"end_id": [2**40]}, r"'end_id': 1099511627776 does not fit the declared INT32"),
    ({"bad_words": [["a", "b"], ["c"]]}, r"'bad_words' is ragged \(rows of \[1, 2\] values\)"),
    ({"bad_words": ["a", ["b"]]}, r"'bad_words' mixes lists and single values"),
    ({"bad_words": []}, r"'bad_words' is an empty list"),
])
def test_wrong_list_values_are_refused_before_sending(ensemble_server: LocalServer, value: dict[str, Any],
                                                      message: str) -> None:
    before = len(ensemble_server.requests("ensemble"))
    model = ChatSteerLM(model="ensemble", url=ensemble_server.grpc_url, profile=MODEL, max_retries=0,
                        model_kwargs=value)
    with pytest.raises(ConfigurationError, match=message):
        model.invoke("hi")
    assert len(ensemble_server.requests("ensemble")) == before  # nothing was sent


def test_values_that_are_not_lists_of_scalars_are_refused_at_construction() -> None:
    with pytest.raises(ConfigurationError, match=r"extra input 'lora_uids' must be a string, number or bool, or a "
                                                 r"list of them"):
        ChatSteerLM(model=MODEL, model_kwargs={"lora_uids": {"a": 1}})
    with pytest.raises(ConfigurationError, match="extra input 'x' must be"):
        SteerLM(model=MODEL, additional_kwargs={"x": [[["too deep"]]]})
