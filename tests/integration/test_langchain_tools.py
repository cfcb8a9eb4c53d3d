"""Tools, structured output and an agent loop over the prompted JSON protocol, on the real server.

The scripted model answers a prompt that offers tools with a call of the first offered tool (arguments
built from its schema and the words of the user turn) and, after a "Tool result" turn, with
``Final answer: <the result's first line>``. Replies of any other shape come from ``[[say=...]]``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from pydantic import BaseModel, Field

from langchain_steerlm import ChatSteerLM
from steerlm.profiles import STEERLM_SYSTEM_PROMPT

MODEL = "Llama2-70B-SteerLM-Chat"
LABELS = ("quality:4,toxicity:0,humor:0,creativity:0,helpfulness:4,correctness:4,coherence:4,complexity:4,"
          "verbosity:4")


@tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"It is sunny in {city}."


@tool
def unicode_customer(customer_name: str) -> str:
    """Create a customer."""
    return customer_name


def chat(server: Any, **kwargs: Any) -> ChatSteerLM:
    return ChatSteerLM(model=MODEL, url=server.grpc_url, **kwargs)


def last_prompt(server: Any) -> str:
    return str(server.last_request(MODEL)["inputs"]["prompts"]["data"][0])


@pytest.mark.parametrize("async_api", [False, True])
def test_bound_tools_are_offered_in_the_system_turn_and_calls_parsed(server: Any, async_api: bool) -> None:
    bound = chat(server).bind_tools([get_weather])
    question = "What is the weather in Paris?"
    reply = asyncio.run(bound.ainvoke(question)) if async_api else bound.invoke(question)
    assert [(c["name"], c["args"]) for c in reply.tool_calls] == [("get_weather", {"city": "Paris"})]
    prompt = last_prompt(server)
    head, tools_json = prompt.split("<tools>\n")[0], prompt.split("<tools>\n")[1].split("\n</tools>")[0]
    assert head.startswith(f"<extra_id_0>System\n{STEERLM_SYSTEM_PROMPT}\n\nYou can call the following tools.")
    assert [t["name"] for t in json.loads(tools_json)] == ["get_weather"]
    assert prompt.endswith(f"<extra_id_1>User\n{question}\n<extra_id_1>Assistant\n<extra_id_2>{LABELS}\n")


def test_tool_results_render_as_turns_and_the_model_answers(server: Any) -> None:
    bound = chat(server).bind_tools([get_weather])
    call = AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "c1",
                                      "type": "tool_call"}])
    reply = bound.invoke([HumanMessage("Weather in Paris?"), call,
                          ToolMessage("It is sunny in Paris.", tool_call_id="c1", name="get_weather")])
    assert reply.content == "Final answer: It is sunny in Paris." and reply.tool_calls == []
    assert last_prompt(server).endswith(
        f"<extra_id_1>User\nWeather in Paris?\n<extra_id_1>Assistant\n<extra_id_2>{LABELS}\n"
        '{"tool_calls": [{"arguments": {"city": "Paris"}, "name": "get_weather"}]}\n'
        "<extra_id_1>User\nTool result (get_weather, call c1):\nIt is sunny in Paris.\n"
        f"<extra_id_1>Assistant\n<extra_id_2>{LABELS}\n"
    )


@pytest.mark.parametrize(
    ("reply", "valid", "invalid"),
    [
        ('Checking. {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}', 1, 0),
        ('{"tool_calls": [{"name": "get_weather", "arguments": "{city: Oslo"}]}', 0, 1),
        ('{"tool_calls": [{"arguments": {"city": "Oslo"}}]}', 0, 1),
        ('I will call {"tool_calls": [ and then stop', 0, 1),
        ("No tool needed: it is sunny.", 0, 0),
    ],
)
def test_replies_never_crash_the_parser(server: Any, reply: str, valid: int, invalid: int) -> None:
    message = chat(server).bind_tools([get_weather]).invoke(f"[[say={reply}]]")
    assert (len(message.tool_calls), len(message.invalid_tool_calls)) == (valid, invalid)


def test_unicode_tool_arguments_round_trip(server: Any) -> None:
    say = '{"tool_calls": [{"name": "unicode_customer", "arguments": {"customer_name": "你好啊集团 こんにちは"}}]}'
    bound = chat(server).bind_tools([unicode_customer], tool_choice="any")
    assert bound.invoke(f"[[say={say}]]").tool_calls[0]["args"] == {"customer_name": "你好啊集团 こんにちは"}
    streamed = None
    for chunk in bound.stream(f"[[say={say}]]"):
        streamed = chunk if streamed is None else streamed + chunk
    assert streamed is not None and streamed.tool_calls[0]["args"]["customer_name"] == "你好啊集团 こんにちは"


def test_forced_tool_choice_offers_only_that_tool(server: Any) -> None:
    reply = chat(server).bind_tools([unicode_customer, get_weather], tool_choice="get_weather").invoke("Rome?")
    assert reply.tool_calls[0]["name"] == "get_weather"
    offered = json.loads(last_prompt(server).split("<tools>\n")[1].split("\n</tools>")[0])
    assert [t["name"] for t in offered] == ["get_weather"]
    assert "You must call the tool 'get_weather' now." in last_prompt(server)


class Joke(BaseModel):
    """A joke."""

    setup: str = Field(description="the setup")
    punchline: str = Field(description="the punchline")


@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
def test_structured_output_through_the_protocol(server: Any, method: str) -> None:
    joke = chat(server).with_structured_output(Joke, method=method).invoke("Tell a joke about cats")
    assert isinstance(joke, Joke) and joke.setup == "cats"
    raw = chat(server).with_structured_output(Joke.model_json_schema(), include_raw=True).invoke("[[say=no json]]")
    assert isinstance(raw, dict) and raw["parsed"] is None and raw["raw"].content == "no json"
    assert raw["parsing_error"] is None  # no tool call: nothing parsed, nothing raised


@pytest.mark.parametrize("async_api", [False, True])
def test_structured_output_batch_is_one_triton_request(server: Any, async_api: bool) -> None:
    structured = chat(server).with_structured_output(Joke)
    questions = ["Tell a joke about cats", "Tell a joke about dogs", "Tell a joke about owls"]
    jokes = asyncio.run(structured.abatch(questions)) if async_api else structured.batch(questions)
    assert [j.setup for j in jokes] == ["cats", "dogs", "owls"]  # type: ignore[union-attr]
    assert len(server.requests(MODEL)) == 1


def test_structured_output_json_mode(server: Any) -> None:
    result = chat(server).with_structured_output(Joke, method="json_mode", include_raw=True).invoke(
        'Reply in JSON. [[say=```json\n{"setup": "a", "punchline": "b"}\n```]]')
    assert isinstance(result, dict) and result["parsed"] == Joke(setup="a", punchline="b")
    assert "<tools>" not in last_prompt(server)


@pytest.mark.parametrize("async_api", [False, True])
def test_agent_loop_calls_the_tool_then_answers(server: Any, async_api: bool) -> None:
    agent = create_agent(chat(server), tools=[get_weather])
    state = {"messages": [HumanMessage("What is the weather in Paris?")]}
    result = asyncio.run(agent.ainvoke(state)) if async_api else agent.invoke(state)
    kinds = [type(m).__name__ for m in result["messages"]]
    assert kinds == ["HumanMessage", "AIMessage", "ToolMessage", "AIMessage"]
    assert result["messages"][1].tool_calls[0]["args"] == {"city": "Paris"}
    assert result["messages"][2].content == "It is sunny in Paris."
    assert result["messages"][3].content == "Final answer: It is sunny in Paris."
    assert len(server.requests(MODEL)) == 2


@pytest.mark.parametrize("async_api", [False, True])
def test_agent_streams_the_final_answer_token_by_token(server: Any, async_api: bool) -> None:
    streaming = ChatSteerLM(model=f"{MODEL}-streaming", profile=MODEL, url=server.grpc_url)
    agent = create_agent(streaming, tools=[get_weather])
    state = {"messages": [HumanMessage("What is the weather in Paris?")]}

    async def collect() -> list[Any]:
        return [item async for item in agent.astream(state, stream_mode="messages")]

    items = asyncio.run(collect()) if async_api else list(agent.stream(state, stream_mode="messages"))
    model_chunks = [m for m, meta in items if meta.get("langgraph_node") == "model"]
    text_chunks = [m.content for m in model_chunks if m.content]
    assert len(text_chunks) > 3 and "".join(text_chunks) == "Final answer: It is sunny in Paris."
    assert not any("tool_calls" in t or "{" in t for t in text_chunks)  # no protocol text leaks
    calls = [c for m in model_chunks for c in m.tool_call_chunks]
    assert [(c["name"], json.loads(c["args"] or "{}")) for c in calls] == [("get_weather", {"city": "Paris"})]
    finishes = [m.response_metadata.get("finish_reason") for m in model_chunks if m.response_metadata]
    assert finishes[0] == "tool_calls" and len(finishes) == 2 and finishes[1] != "tool_calls"


def test_prose_before_a_tool_call_streams_and_the_call_comes_last(server: Any) -> None:
    say = 'Let me check that for you. {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}'
    streaming = ChatSteerLM(model=f"{MODEL}-streaming", profile=MODEL, url=server.grpc_url)
    chunks = list(streaming.bind_tools([get_weather]).stream(f"[[say={say}]]"))
    assert [c.content for c in chunks[:-1]] == ["Let ", "me ", "check ", "that ", "for ", "you. "]
    last = chunks[-1]
    assert last.content == "" and last.tool_call_chunks[0]["name"] == "get_weather"
    assert last.response_metadata["finish_reason"] == "tool_calls"
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged += chunk
    assert merged.content == "Let me check that for you. " and merged.tool_calls[0]["args"] == {"city": "Oslo"}
