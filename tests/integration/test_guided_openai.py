"""Guided decoding and pass-through fields on OpenAI-compatible servers (the loopback double, vLLM flavour).

Structured output goes out as ``response_format`` (``json_schema`` with the schema, ``strict`` when asked;
``json_object`` for a schema-less JSON mode); the double honours it for any schema, as vLLM's guided
decoding does. ``extra_body`` / ``model_kwargs`` / LlamaIndex ``additional_kwargs`` are merged into the
request's JSON body; a field steerlm sets itself is refused (ConfigurationError) rather than overwritten.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from langchain_steerlm import ChatSteerLM
from steerlm.errors import ConfigurationError
from steerlm.json_schema import schema_errors
from steerlm_testing.openai_double import OpenAIDouble

pytestmark = [pytest.mark.timeout(120)]

PROFILE = "Llama2-70B-SteerLM-Chat"


class Item(BaseModel):
    label: str
    count: int = Field(ge=2)


class Order(BaseModel):
    """An order."""

    customer: str
    items: list[Item] = Field(min_length=1)
    express: bool


@tool
def lookup(sku: str) -> str:
    """Look an article up."""
    return sku


@pytest.fixture
def double() -> Iterator[OpenAIDouble]:
    with OpenAIDouble() as server:
        yield server


def chat(double: OpenAIDouble, **kwargs: Any) -> ChatSteerLM:
    return ChatSteerLM(model=double.model, profile=PROFILE, url=double.url, max_retries=0, **kwargs)


def body(double: OpenAIDouble) -> dict[str, Any]:
    sent: dict[str, Any] = double.completions()[-1].body
    return sent


@pytest.mark.parametrize("strict", [None, True, False])
@pytest.mark.parametrize("mode", ["invoke", "stream", "ainvoke"])
async def test_json_schema_goes_out_as_response_format(double: OpenAIDouble, strict: bool | None,
                                                       mode: str) -> None:
    runnable = chat(double).with_structured_output(Order, method="json_schema", strict=strict)
    question = "Order for Lin"
    if mode == "invoke":
        order = runnable.invoke(question)
    elif mode == "ainvoke":
        order = await runnable.ainvoke(question)
    else:
        order = list(runnable.stream(question))[-1]
    assert isinstance(order, Order) and order.customer == "Lin" and order.items[0].count >= 2
    spec = {"name": "Order", "schema": Order.model_json_schema(), **({} if strict is None else {"strict": strict})}
    assert body(double)["response_format"] == {"type": "json_schema", "json_schema": spec}


def test_json_mode_without_a_schema_is_json_object(double: OpenAIDouble) -> None:
    value = chat(double).with_structured_output({}, method="json_mode").invoke("Anything as JSON")
    assert value == {}
    assert body(double)["response_format"] == {"type": "json_object"}


def test_a_required_tool_call_is_guided_and_finishes_with_tool_calls(double: OpenAIDouble) -> None:
    reply = chat(double).bind_tools([lookup], tool_choice="lookup", strict=True).invoke("Find sku A-17")
    assert reply.tool_calls[0]["name"] == "lookup" and reply.response_metadata["finish_reason"] == "tool_calls"
    fmt = body(double)["response_format"]
    assert fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["properties"]["tool_calls"]["items"]["properties"]["name"] == {
        "const": "lookup"}
    chat(double).bind_tools([lookup]).invoke("Find sku A-17")
    assert "response_format" not in body(double)  # "auto": nothing is forced


def test_extra_body_and_model_kwargs_are_merged_into_the_request(double: OpenAIDouble) -> None:
    schema = {"type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}
    model = chat(double, model_kwargs={"min_tokens": 2}, extra_body={"structured_outputs": {"json": schema}})
    reply = model.invoke("Is it ok")
    assert reply.content == '{"ok": true}'  # vLLM's own structured_outputs, passed through, guided the reply
    sent = body(double)
    assert sent["min_tokens"] == 2 and sent["structured_outputs"] == {"json": schema}
    model.invoke("Again", extra_body={"repetition_penalty": 1.2, "guided_json": schema})  # per call: replaces
    assert body(double)["repetition_penalty"] == 1.2 and "structured_outputs" not in body(double)


@pytest.mark.parametrize(("kwargs", "clash"), [
    ({"extra_body": {"max_tokens": 5}}, "max_tokens"),
    ({"extra_body": {"prompt": "x"}}, "prompt"),
    ({"extra_body": {"stream": True}}, "stream"),
    ({"temperature": 0.5, "model_kwargs": {"temperature": 0.1}}, "temperature"),
    ({"guided_json": {"type": "object"}, "extra_body": {"response_format": {"type": "text"}}}, "response_format"),
    ({"model_kwargs": {"min_tokens": 1}, "extra_body": {"min_tokens": 2}}, "min_tokens"),
])
def test_a_field_steerlm_sets_is_refused(double: OpenAIDouble, kwargs: dict[str, Any], clash: str) -> None:
    with pytest.raises(ConfigurationError, match=repr(clash)):
        chat(double, **kwargs).invoke("hello")
    assert not double.completions()  # refused before anything was sent


@pytest.mark.parametrize("mode", ["invoke", "ainvoke", "stream", "astream", "batch"])
async def test_a_server_refusing_response_format_falls_back_to_the_prompted_protocol(
        mode: str, caplog: pytest.LogCaptureFixture) -> None:
    """transformers serve answers 422 "Unexpected fields" to ``response_format``: the request goes again
    without it (and none from then on), and the prompted protocol carries the schema."""
    with OpenAIDouble(formats=False, lists=False) as server:
        runnable = chat(server).with_structured_output(Order, method="json_schema", strict=True)
        if mode == "invoke":
            orders = [runnable.invoke("Order for Lin")]
        elif mode == "ainvoke":
            orders = [await runnable.ainvoke("Order for Lin")]
        elif mode == "stream":
            orders = [list(runnable.stream("Order for Lin"))[-1]]
        elif mode == "astream":
            orders = [[o async for o in runnable.astream("Order for Lin")][-1]]
        else:
            orders = runnable.batch(["Order for Lin", "Order for Lin"])
        assert all(isinstance(o, Order) and o.customer == "Lin" for o in orders)
        sent = [r.body for r in server.completions()]
        assert "response_format" in sent[0] and "response_format" not in sent[-1]
        assert "<json_schema>" in sent[-1]["prompt"]
        assert sum("response_format" in b for b in sent) == 1  # refused once, then left out
        assert "refuses response_format" in caplog.text


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_llamaindex_additional_kwargs_and_structured_predict(double: OpenAIDouble, mode: str) -> None:
    from llama_index.core.prompts import PromptTemplate

    from llamaindex_steerlm import SteerLM

    llm = SteerLM(model=double.model, profile=PROFILE, url=double.url, max_retries=0,
                  additional_kwargs={"min_tokens": 3}, extra_body={"ignore_eos": False})
    prompt = PromptTemplate("Order for {name}")
    order = (llm.structured_predict(Order, prompt, name="Kim") if mode == "sync"
             else await llm.astructured_predict(Order, prompt, name="Kim"))
    assert isinstance(order, Order) and order.customer == "Kim"
    sent = body(double)
    assert sent["min_tokens"] == 3 and sent["ignore_eos"] is False
    assert schema_errors(order.model_dump(), Order.model_json_schema()) == []
    assert sent["response_format"]["json_schema"]["schema"]["properties"]["tool_calls"]["items"]["properties"][
        "name"] == {"const": "Order"}
