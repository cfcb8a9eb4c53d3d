"""Function calling and a LlamaIndex FunctionAgent loop against the local server's scripted model.

The scripted model answers a prompt that offers tools (the `steerlm.tools` block) with a call of the
first tool, arguments taken from the last user turn; after a user turn starting with "Tool result" it
replies ``Final answer: <the result>``. So a loop must: offer the tool, parse the call, run the tool,
send its result back, and stop on the final answer.
"""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.agent.workflow import FunctionAgent
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.tools import FunctionTool

from llamaindex_steerlm import SteerLM
from steerlm.tools import extract_offered_tools
from steerlm_testing import LocalServer

# FunctionAgent's workflow runs inspect.getmembers() over itself, touching deprecated pydantic attributes.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:inspect")

CHAT = "Llama2-70B-SteerLM-Chat"
STREAMING = "Llama2-70B-SteerLM-Chat-streaming"
QUESTION = "What is the weather in Paris"


def get_weather(city: str) -> str:
    """Current weather for a city."""
    return f"Sunny and 21 C in {city}"


WEATHER = FunctionTool.from_defaults(fn=get_weather)


def make_llm(server: LocalServer, streaming: bool = False) -> SteerLM:
    return SteerLM(model=STREAMING if streaming else CHAT, profile=CHAT, url=server.grpc_url, max_tokens=64,
                   max_retries=0)


def prompts(server: LocalServer, model: str = CHAT) -> list[str]:
    return [entry["inputs"]["prompts"]["data"][0] for entry in server.requests(model)]


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_predict_and_call_runs_the_tool(server: LocalServer, mode: str) -> None:
    llm = make_llm(server)
    if mode == "sync":
        result = llm.predict_and_call([WEATHER], user_msg=QUESTION)
    else:
        result = await llm.apredict_and_call([WEATHER], user_msg=QUESTION)
    assert result.response == "Sunny and 21 C in Paris"
    assert result.sources[0].raw_input == {"args": (), "kwargs": {"city": "Paris"}}
    (prompt,) = prompts(server)
    assert [t["name"] for t in extract_offered_tools(prompt)] == ["get_weather"]


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_manual_tool_loop_with_chat_with_tools(server: LocalServer, mode: str) -> None:
    llm = make_llm(server)

    async def call(history: list[ChatMessage]) -> Any:
        if mode == "sync":
            return llm.chat_with_tools([WEATHER], chat_history=history)
        return await llm.achat_with_tools([WEATHER], chat_history=history)

    history = [ChatMessage(role="user", content=QUESTION)]
    response = await call(history)
    (selection,) = llm.get_tool_calls_from_response(response)
    assert (selection.tool_name, selection.tool_kwargs) == ("get_weather", {"city": "Paris"})
    output = WEATHER(**selection.tool_kwargs)
    history += [response.message, ChatMessage(role="tool", content=str(output),
                                              additional_kwargs={"tool_call_id": selection.tool_id})]
    final = await call(history)
    assert final.message.content == "Final answer: Sunny and 21 C in Paris"
    assert llm.get_tool_calls_from_response(final, error_on_no_tool_call=False) == []
    second = prompts(server)[-1]
    assert '{"tool_calls": [{"arguments": {"city": "Paris"}, "name": "get_weather"}]}' in second
    assert f"<extra_id_1>User\nTool result (call {selection.tool_id}):\nSunny and 21 C in Paris\n" in second


@pytest.mark.parametrize("streaming", [False, True], ids=["achat_with_tools", "astream_chat_with_tools"])
async def test_function_agent_completes_a_tool_call_and_a_final_answer(server: LocalServer, streaming: bool) -> None:
    llm = make_llm(server, streaming=streaming)
    agent = FunctionAgent(tools=[WEATHER], llm=llm, streaming=streaming,
                          system_prompt="You are a weather assistant.")
    handler = agent.run(user_msg=QUESTION)
    calls, deltas = [], []
    async for event in handler.stream_events():
        if type(event).__name__ == "ToolCallResult":
            calls.append((event.tool_name, event.tool_kwargs, str(event.tool_output)))
        if type(event).__name__ == "AgentStream" and event.delta:
            deltas.append(event.delta)
    result: Any = await handler
    assert calls == [("get_weather", {"city": "Paris"}, "Sunny and 21 C in Paris")]
    if streaming:  # the protocol JSON never leaks into deltas; the final answer streams token by token
        assert not any("tool_calls" in d or "{" in d for d in deltas), deltas
        assert len(deltas) > 3 and "".join(deltas) == "Final answer: Sunny and 21 C in Paris"
    assert result.response.content == "Final answer: Sunny and 21 C in Paris"
    first, second = prompts(server, STREAMING if streaming else CHAT)
    assert first.startswith("<extra_id_0>System\nYou are a weather assistant.\n\nYou can call the following tools.")
    assert "Tool result" in second and "Sunny and 21 C in Paris" in second


async def test_agent_workflow_runs_the_function_agent_loop(server: LocalServer) -> None:
    from llama_index.core.agent.workflow import AgentWorkflow

    agent = FunctionAgent(name="weather", description="Answers weather questions.", tools=[WEATHER],
                          llm=make_llm(server), system_prompt="You are a weather assistant.")
    workflow = AgentWorkflow(agents=[agent], root_agent="weather")
    result: Any = await workflow.run(user_msg=QUESTION)
    assert result.response.content == "Final answer: Sunny and 21 C in Paris"
    assert len(prompts(server)) == 2


@pytest.mark.parametrize("streaming", [False, True])
async def test_react_agent_parses_a_react_reply_from_the_server(server: LocalServer, streaming: bool) -> None:
    from llama_index.core.agent.workflow import ReActAgent

    llm = make_llm(server, streaming=streaming)
    agent = ReActAgent(tools=[WEATHER], llm=llm, streaming=streaming)
    reply = "Thought: I can answer without using any more tools.\\nAnswer: Paris is sunny today."
    result: Any = await agent.run(user_msg=f"Weather in Paris? [[say={reply}]]")
    assert str(result.response.content).strip() == "Paris is sunny today."
    (prompt,) = prompts(server, STREAMING if streaming else CHAT)
    assert "get_weather" in prompt and "Thought" in prompt  # ReAct's own tool format, not the JSON protocol
