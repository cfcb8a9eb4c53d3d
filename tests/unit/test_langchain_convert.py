"""Pure conversions: LangChain messages -> prompts, replies -> AIMessages, tools, errors, RAG text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core import exceptions as lc
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, ChatMessage, HumanMessage, SystemMessage, ToolMessage
from pydantic import BaseModel

from langchain_steerlm import _errors as lce
from langchain_steerlm._convert import ai_message, final_chunk, to_core_messages
from langchain_steerlm.rag import format_documents
from langchain_steerlm.tools import bind_tool_kwargs, offer_tools
from steerlm import errors as core
from steerlm.profiles import STEERLM_SYSTEM_PROMPT, get_profile
from steerlm.prompts import Message, render
from steerlm.tools import parse_tool_reply

STEER = get_profile("Llama2-70B-SteerLM-Chat")
LABELS = "quality:4,toxicity:0,humor:0,creativity:0,helpfulness:4,correctness:4,coherence:4,complexity:4"


def test_history_ai_message_is_rendered_with_its_own_labels() -> None:
    history = [
        HumanMessage("Hi"),
        AIMessage("Hello!", response_metadata={"steerlm_attributes": {**dict(STEER.default_attributes),
                                                                      "verbosity": 0}}),
        HumanMessage("More?"),
    ]
    prompt = render(STEER, to_core_messages(history, STEER), {"verbosity": 2})
    assert prompt == (
        f"<extra_id_0>System\n{STEERLM_SYSTEM_PROMPT}\n"
        "<extra_id_1>User\nHi\n"
        f"<extra_id_1>Assistant\n<extra_id_2>{LABELS},verbosity:0\nHello!\n"
        "<extra_id_1>User\nMore?\n"
        f"<extra_id_1>Assistant\n<extra_id_2>{LABELS},verbosity:2\n"
    )


def test_labels_of_another_attribute_set_are_not_applied() -> None:
    message = AIMessage("x", response_metadata={"steerlm_attributes": {"violence": 9}})
    assert to_core_messages([message], STEER)[0].attributes is None
    nemo = get_profile("NV-Llama2-70B-RLHF-Chat")
    assert to_core_messages([AIMessage("x", response_metadata={"steerlm_attributes": {"humor": 1}})],
                            nemo)[0].attributes is None


def test_roles_blocks_and_tool_messages() -> None:
    messages = [
        SystemMessage("sys"),
        HumanMessage([{"type": "text", "text": "a"}, "b"], name="someone"),
        AIMessage([{"type": "text", "text": "calling"}, {"type": "tool_use", "id": "1", "name": "f", "input": {}}],
                  tool_calls=[{"name": "f", "args": {"x": 1}, "id": "c1", "type": "tool_call"}]),
        ToolMessage("missing b", tool_call_id="c1", name="f", status="error"),
        ChatMessage(role="user", content="again"),
    ]
    converted = to_core_messages(messages, STEER)
    assert [m.role for m in converted] == ["system", "user", "assistant", "tool", "user"]
    assert converted[1].content == "ab"
    assert converted[2].content == "calling" and converted[2].tool_calls[0].arguments == {"x": 1}
    assert converted[3] == Message(role="tool", content="Error: missing b", name="f", tool_call_id="c1")


@pytest.mark.parametrize("message", [
    HumanMessage([{"type": "image_url", "image_url": {"url": "http://x"}}]),
    ChatMessage(role="narrator", content="x"),
])
def test_unrenderable_messages_raise_prompt_error(message: Any) -> None:
    with pytest.raises(core.PromptError):
        to_core_messages([message], STEER)


def test_replies_with_tools_are_parsed_and_never_crash() -> None:
    reply = ai_message('Sure. {"tool_calls": [{"name": "f", "arguments": {"x": 1}}]}', {}, None, tools_offered=True)
    assert reply.content == "Sure." and reply.tool_calls[0]["name"] == "f" and reply.tool_calls[0]["args"] == {"x": 1}
    broken = ai_message('{"tool_calls": [{"name": "f", "arguments": "{x"}]}', {}, None, tools_offered=True)
    assert broken.tool_calls == [] and broken.invalid_tool_calls[0]["name"] == "f"
    assert "not valid JSON" in (broken.invalid_tool_calls[0]["error"] or "")
    garbage = ai_message('oops {"tool_calls": [', {}, None, tools_offered=True)
    assert garbage.tool_calls == [] and len(garbage.invalid_tool_calls) == 1
    plain = ai_message('{"tool_calls": []} stays text', {}, None, tools_offered=False)
    assert plain.content == '{"tool_calls": []} stays text'


def test_final_chunk_carries_the_parsed_tool_calls_as_chunks() -> None:
    meta = {"model_name": "m", "finish_reason": "stop"}
    reply = parse_tool_reply('{"tool_calls": [{"name": "f", "arguments": {"a": 1}}]}')
    chunk = final_chunk("", meta, None, parsed=reply)
    assert chunk.chunk_position == "last" and chunk.tool_calls[0]["name"] == "f" and chunk.content == ""
    assert chunk.tool_call_chunks[0]["args"] == '{"a": 1}' and chunk.tool_calls[0]["args"] == {"a": 1}
    assert chunk.response_metadata["finish_reason"] == "tool_calls"
    assert ai_message('{"name": "f", "arguments": {}}', {"finish_reason": "stop"}, None,
                      tools_offered=True).response_metadata["finish_reason"] == "tool_calls"
    assert final_chunk("end", {}, None).content == "end"


class Weather(BaseModel):
    """Weather in a city."""

    city: str


def test_tool_binding_and_tool_choice() -> None:
    bound = bind_tool_kwargs([Weather], "required")
    assert bound["tool_choice"] == "any" and bound["tools"][0]["function"]["name"] == "Weather"
    forced = bind_tool_kwargs([Weather], {"type": "function", "function": {"name": "Weather"}})
    assert forced["tool_choice"] == "Weather"
    assert bind_tool_kwargs([Weather], False)["tool_choice"] == "none"
    with pytest.raises(core.ConfigurationError, match="Nope"):
        bind_tool_kwargs([Weather], "Nope")


def test_offer_tools_appends_the_protocol_to_the_system_turn() -> None:
    def other(x: int) -> int:
        """Other tool."""
        return x

    extra = bind_tool_kwargs([other, Weather], "Weather")
    messages, offered = offer_tools([Message("user", "hi")], extra, STEER)
    assert offered and messages[0].role == "system"
    assert messages[0].content.startswith(STEERLM_SYSTEM_PROMPT + "\n\n")
    tools = json.loads(messages[0].content.split("<tools>\n")[1].split("\n</tools>")[0])
    assert [t["name"] for t in tools] == ["Weather"]  # a forced tool is the only one offered
    assert offer_tools([Message("user", "hi")], bind_tool_kwargs([Weather], "none"), STEER) == (
        [Message("user", "hi")], False)


@pytest.mark.parametrize(
    ("error", "twin", "lc_class"),
    [
        (core.RequestTimeoutError("t", status="DEADLINE_EXCEEDED"), lce.SteerLMTimeoutError, lc.ModelTimeoutError),
        (core.ServerUnavailableError("c"), lce.SteerLMConnectionError, lc.ModelConnectionError),
        (core.ServerUnavailableError("c", status="UNAVAILABLE"), lce.SteerLMConnectionError, lc.ModelConnectionError),
        (core.ServerUnavailableError("s", status="503"), lce.SteerLMServerError, lc.ModelAPIError),
        (core.ServerOverloadedError("o", status="429", retry_after=3), lce.SteerLMRateLimitError,
         lc.ModelRateLimitError),
        (core.ModelNotFoundError("m", model="x"), lce.SteerLMModelNotFoundError, lc.ModelNotFoundError),
        (core.InvalidRequestError("i", status="400"), lce.SteerLMInvalidRequestError, lc.ModelInvalidRequestError),
        (core.InvalidRequestError("a", status="401"), lce.SteerLMAuthenticationError, lc.ModelAuthenticationError),
        (core.InvalidRequestError("p", status="403"), lce.SteerLMPermissionDeniedError,
         lc.ModelPermissionDeniedError),
        (core.StreamInterruptedError("s", partial_text="par"), lce.SteerLMStreamInterruptedError, lc.ModelAPIError),
        (core.ContextWindowExceededError("w", prompt_tokens=5, limit=4), lce.SteerLMContextOverflowError,
         lc.ContextOverflowError),
        (core.TritonError("x"), lce.SteerLMAPIError, lc.ModelAPIError),
    ],
)
def test_errors_become_dual_typed_twins(error: core.SteerLMError, twin: type, lc_class: type) -> None:
    cause = RuntimeError("transport")
    try:
        try:
            raise error from cause
        except core.SteerLMError:
            with lce.mapped_errors():
                raise
    except Exception as raised:  # inspected below
        mapped = raised
    assert type(mapped) is twin
    assert isinstance(mapped, type(error)) and isinstance(mapped, lc_class)
    assert str(mapped) == str(error) and mapped.__dict__ == error.__dict__ and mapped.__cause__ is cause
    assert mapped.is_retryable == lc_class.is_retryable  # type: ignore[attr-defined]


def test_configuration_errors_stay_plain() -> None:
    error = core.ConfigurationError("bad")
    assert lce.to_langchain_error(error) is error
    with pytest.raises(core.ConfigurationError), lce.mapped_errors():
        raise error


def test_format_documents() -> None:
    assert format_documents([Document(page_content=" a \n"), Document(page_content="b")]) == "a\n\nb"
    assert format_documents("already text") == "already text"
