"""llamaindex_steerlm.SteerLM call paths against the real local Triton server: prompt hooks, system
prompt and context in ``complete``, the stream layout, usage and the context-window guard, tools,
instrumentation events and closed QA through ``predict`` / ``stream``. (The async clients' lifetime, for
both adapters: test_client_lifetime.py.)

What was sent is read from the server's request log; replies come from the scripted model's
``[[say=...]]`` directive (``\\u003cextra_id_1>`` at its end is the end-of-turn marker: the reply then
finishes with "stop"). Each I/O method runs in its four forms (sync, async, stream, astream); streams
use the decoupled model, so they really stream token by token.
"""

from __future__ import annotations

from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.tools import FunctionTool
from llama_index_instrumentation import get_dispatcher

from llamaindex_steerlm import SteerLM
from steerlm import ConfigurationError, ContextWindowExceededError, format_prompt
from steerlm.tools import extract_offered_tools
from steerlm_testing import LocalServer

CHAT = "Llama2-70B-SteerLM-Chat"
STREAMING = "Llama2-70B-SteerLM-Chat-streaming"
END = "\\u003cextra_id_1>"  # in a [[say=...]] value: the end-of-turn marker
STREAMS = {"stream", "astream"}
MODES = pytest.mark.parametrize("mode", ["sync", "async", "stream", "astream"])
SYNC_ASYNC = pytest.mark.parametrize("mode", ["sync", "async"])


def make_llm(server: LocalServer, mode: str = "sync", **kwargs: Any) -> SteerLM:
    """An LLM on the decoupled (streaming) model for stream modes, else on the unary one."""
    model = STREAMING if mode in STREAMS else CHAT
    return SteerLM(model=model, profile=CHAT, url=server.grpc_url, max_retries=0, **kwargs)


def prompts(server: LocalServer, mode: str = "sync") -> list[str]:
    """The prompt of every request the model of `mode` received, in order."""
    model = STREAMING if mode in STREAMS else CHAT
    return [p for entry in server.requests(model) for p in entry["inputs"]["prompts"]["data"]]


async def chat(llm: SteerLM, mode: str, messages: list[ChatMessage], **kwargs: Any) -> Any:
    """The response (for streams: the last one)."""
    if mode == "sync":
        return llm.chat(messages, **kwargs)
    if mode == "async":
        return await llm.achat(messages, **kwargs)
    if mode == "stream":
        return list(llm.stream_chat(messages, **kwargs))[-1]
    return [r async for r in await llm.astream_chat(messages, **kwargs)][-1]


async def complete(llm: SteerLM, mode: str, prompt: str, **kwargs: Any) -> Any:
    if mode == "sync":
        return llm.complete(prompt, **kwargs)
    if mode == "async":
        return await llm.acomplete(prompt, **kwargs)
    if mode == "stream":
        return list(llm.stream_complete(prompt, **kwargs))[-1]
    return [r async for r in await llm.astream_complete(prompt, **kwargs)][-1]


def user(text: str) -> list[ChatMessage]:
    return [ChatMessage(role="user", content=text)]


# ---------------------------------------------------------------- prompts

@MODES
async def test_complete_renders_the_system_prompt_steering_and_context(server: LocalServer, mode: str) -> None:
    llm = make_llm(server, mode, system_prompt="Be terse.")
    response = await complete(llm, mode, "[[say=Hello there friend]]", creativity=3)
    system = {"role": "system", "content": "Be terse."}
    assert prompts(server, mode) == [format_prompt([system, {"role": "user", "content": "[[say=Hello there friend]]"}],
                                                   profile=CHAT, attributes={"creativity": 3})]
    assert response.text == "Hello there friend"
    assert response.additional_kwargs["attributes"]["creativity"] == 3
    await complete(llm, mode, "[[say=Ada.]] Who?", context="Ada wrote it.")
    assert prompts(server, mode)[-1] == format_prompt([system, {"role": "user", "content": "[[say=Ada.]] Who?"}],
                                                      profile=CHAT, context="Ada wrote it.")


@SYNC_ASYNC
async def test_custom_prompt_hooks_are_honoured(server: LocalServer, mode: str) -> None:
    llm = make_llm(server, max_tokens=2, messages_to_prompt=lambda ms: "|".join(m.content or "" for m in ms),
                   completion_to_prompt=lambda p: f"<<{p}>>")
    await chat(llm, mode, [*user("Hi"), *user("there")])
    await complete(llm, mode, "x")
    assert prompts(server) == ["Hi|there", "<<x>>"]
    with pytest.raises(ConfigurationError, match="messages_to_prompt"):
        await chat(llm, mode, user("Hi"), context="c")
    with pytest.raises(ConfigurationError, match=r"\['verbosity'\] need the profile's template"):
        await complete(llm, mode, "x", verbosity=1)
    assert len(prompts(server)) == 2  # refused before anything was sent


# ---------------------------------------------------------------- streams

@pytest.mark.parametrize("mode", ["stream", "astream"])
async def test_stream_yields_deltas_and_cumulative_text(server: LocalServer, mode: str) -> None:
    llm = make_llm(server, mode)
    say = f"[[say=Hello there friend{END}]]"
    if mode == "stream":
        chats, completions = list(llm.stream_chat(user(say))), list(llm.stream_complete(say))
    else:
        chats = [r async for r in await llm.astream_chat(user(say))]
        completions = [r async for r in await llm.astream_complete(say)]
    # One response per token, then the last (empty delta) with the finish reason.
    assert [c.delta for c in chats] == [c.delta for c in completions] == ["Hello ", "there ", "friend", ""]
    assert [c.message.content for c in chats] == [c.text for c in completions] == [
        "Hello ", "Hello there ", "Hello there friend", "Hello there friend"]
    assert [c.additional_kwargs["finish_reason"] for c in chats] == [None, None, None, "stop"]
    assert len(prompts(server, mode)) == 2


# ---------------------------------------------------------------- usage and the context-window guard

class _WordTokenizer:
    """One token per word (plus one special token when asked for)."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return ([1] if add_special_tokens else []) + [len(word) for word in text.split()]


@MODES
async def test_usage_is_counted_with_a_local_tokenizer(server: LocalServer, mode: str) -> None:
    llm = make_llm(server, mode, tokenizer=_WordTokenizer())
    response = await complete(llm, mode, "[[say=Hello there friend]]")
    (wire,) = prompts(server, mode)
    prompt_tokens = len(wire.split()) + 1
    assert response.raw["usage"] == {"prompt_tokens": prompt_tokens, "completion_tokens": 3,
                                     "total_tokens": prompt_tokens + 3}
    assert response.additional_kwargs["completion_tokens"] == 3
    with pytest.raises(ContextWindowExceededError):
        await complete(llm, mode, "Hi", max_tokens=4096)
    assert len(prompts(server, mode)) == 1  # the guard refused before sending


# ---------------------------------------------------------------- tools

def get_weather(city: str) -> str:
    """Weather for a city."""
    return f"Sunny in {city}"


WEATHER = FunctionTool.from_defaults(fn=get_weather)
CALLS = ('{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}, '
         '{"name": "get_weather", "arguments": {"city": "Rome"}}]}')


@MODES
async def test_chat_with_tools_offers_them_and_parses_the_calls(server: LocalServer, mode: str) -> None:
    llm = make_llm(server, mode)
    kwargs = llm._prepare_chat_with_tools([WEATHER], user_msg=f"Weather in Paris? [[say={CALLS}]]",
                                          tool_required=True)
    response = await chat(llm, mode, kwargs.pop("messages"), **kwargs)
    (prompt,) = prompts(server, mode)
    assert [t["name"] for t in extract_offered_tools(prompt)] == ["get_weather"]
    assert "You must call at least one of these tools now." in prompt
    selections = llm.get_tool_calls_from_response(response)
    assert [(s.tool_name, s.tool_kwargs) for s in selections] == [("get_weather", {"city": "Paris"}),
                                                                   ("get_weather", {"city": "Rome"})]
    assert response.message.content == ""
    single = llm._validate_chat_with_tools_response(response, [WEATHER], allow_parallel_tool_calls=False)
    assert len(llm.get_tool_calls_from_response(single)) == 1


@SYNC_ASYNC
async def test_parallel_calls_in_predict_and_call_and_a_reply_without_calls(server: LocalServer, mode: str) -> None:
    llm = make_llm(server)
    question = f"Weather in Paris and Rome? [[say={CALLS}]]"
    if mode == "sync":
        result = llm.predict_and_call([WEATHER], user_msg=question, allow_parallel_tool_calls=True)
        response = llm.chat_with_tools([WEATHER], user_msg="[[say=It is sunny.]]")
    else:
        result = await llm.apredict_and_call([WEATHER], user_msg=question, allow_parallel_tool_calls=True)
        response = await llm.achat_with_tools([WEATHER], user_msg="[[say=It is sunny.]]")
    assert result.response == "Sunny in Paris\n\nSunny in Rome" and len(result.sources) == 2
    assert response.message.content == "It is sunny."
    assert llm.get_tool_calls_from_response(response, error_on_no_tool_call=False) == []
    with pytest.raises(ValueError, match="Expected at least one tool call"):
        llm.get_tool_calls_from_response(response)
    assert len(prompts(server)) == 2


# ---------------------------------------------------------------- instrumentation

class _Recorder(BaseEventHandler):
    events: list[str]

    @classmethod
    def class_name(cls) -> str:
        return "Recorder"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event.class_name())


async def test_every_method_emits_start_and_end_events(server: LocalServer) -> None:
    recorder = _Recorder(events=[])
    dispatcher = get_dispatcher()
    dispatcher.add_event_handler(recorder)
    try:
        llm = make_llm(server, "stream", max_tokens=2)  # the decoupled model serves all eight methods
        llm.chat(user("Hi"))
        llm.complete("Hi")
        list(llm.stream_chat(user("Hi")))
        list(llm.stream_complete("Hi"))
        await llm.achat(user("Hi"))
        await llm.acomplete("Hi")
        [r async for r in await llm.astream_chat(user("Hi"))]
        [r async for r in await llm.astream_complete("Hi")]
    finally:
        dispatcher.event_handlers.remove(recorder)
    starts = [e for e in recorder.events if e.endswith("StartEvent")]
    ends = [e for e in recorder.events if e.endswith("EndEvent")]
    assert starts.count("LLMChatStartEvent") == 4 and starts.count("LLMCompletionStartEvent") == 4
    assert ends.count("LLMChatEndEvent") == 4 and ends.count("LLMCompletionEndEvent") == 4
    assert len(prompts(server, "stream")) == 8


# ---------------------------------------------------------------- closed QA through predict / stream

async def predict(llm: SteerLM, mode: str, prompt: Any, **kwargs: Any) -> str:
    if mode == "sync":
        return llm.predict(prompt, **kwargs)
    if mode == "async":
        return await llm.apredict(prompt, **kwargs)
    if mode == "stream":
        return "".join(llm.stream(prompt, **kwargs))
    return "".join([t async for t in await llm.astream(prompt, **kwargs)])


@MODES
async def test_query_engine_prompts_use_the_closed_qa_template(server: LocalServer, mode: str) -> None:
    from llama_index.core.prompts.default_prompt_selectors import (
        DEFAULT_REFINE_PROMPT_SEL,
        DEFAULT_TEXT_QA_PROMPT_SEL,
    )

    from llamaindex_steerlm.prompts import REFINE_QUESTION
    from steerlm.prompts import closed_qa_text

    llm = make_llm(server, mode)
    query = "[[say=Ada.]] Who {wrote} it?"  # braces in a bound value are not formatted again
    answer = await predict(llm, mode, DEFAULT_TEXT_QA_PROMPT_SEL.partial_format(query_str=query),
                           context_str="Ada wrote it.")
    assert answer == "Ada."
    assert prompts(server, mode) == [format_prompt([{"role": "user", "content": query}], profile=CHAT,
                                                   context="Ada wrote it.")]
    refine = DEFAULT_REFINE_PROMPT_SEL.partial_format(query_str="[[say=Ada L.]] Who?", existing_answer="Ada.")
    assert await predict(llm, mode, refine, context_msg="Ada Lovelace wrote it.") == "Ada L."
    question = REFINE_QUESTION.format(query_str="[[say=Ada L.]] Who?")
    assert prompts(server, mode)[-1] == format_prompt(
        [{"role": "user", "content": "[[say=Ada L.]] Who?"}, {"role": "assistant", "content": "Ada."},
         {"role": "user", "content": closed_qa_text("Ada Lovelace wrote it.", question)}], profile=CHAT)
    off = make_llm(server, mode, closed_qa=False)
    await predict(off, mode, DEFAULT_TEXT_QA_PROMPT_SEL.partial_format(query_str="[[say=x]] Who?"), context_str="c")
    assert "Context information is below." in prompts(server, mode)[-1]
