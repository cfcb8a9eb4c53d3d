"""llamaindex_steerlm.SteerLM without a server: fields, prompts, responses, tools, instrumentation.

The core client is replaced by a fake that records what it was asked to send; the real server is
exercised in tests/integration/test_llamaindex_*.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage, MessageRole, ToolCallBlock
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.tools import FunctionTool
from llama_index_instrumentation import get_dispatcher

from llamaindex_steerlm import SteerLM
from steerlm import ConfigurationError, ContextWindowExceededError, GenerationParams, PromptError, format_prompt
from steerlm.tools import extract_offered_tools

F1 = "Llama2-70B-SteerLM-Chat"
LABELS = "quality:4,toxicity:0,humor:0,creativity:0,helpfulness:4,correctness:4,coherence:4,complexity:4"
USER = [ChatMessage(role=MessageRole.USER, content="Hi")]


@dataclass
class _Completion:
    text: str
    finish_reason: str
    model: str
    prompt: str


@dataclass
class _Chunk:
    text: str
    finish_reason: str | None = None


@dataclass
class FakeClient:
    """Stands in for SteerLMClient and AsyncSteerLMClient: replies `reply`, streamed word by word."""

    reply: str = "Hello there friend"
    sent: list[tuple[str, GenerationParams]] = field(default_factory=list)

    def _chunks(self) -> list[_Chunk]:
        words = self.reply.split(" ")
        pieces = [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)]
        return [_Chunk(p, "stop" if i == len(pieces) - 1 else None) for i, p in enumerate(pieces)]

    def generate(self, prompt: str, params: GenerationParams) -> _Completion:
        self.sent.append((prompt, params))
        return _Completion(self.reply, "stop", "m", prompt)

    def stream(self, prompt: str, params: GenerationParams) -> Iterator[_Chunk]:
        self.sent.append((prompt, params))
        yield from self._chunks()


class FakeAsyncClient(FakeClient):
    async def generate(self, prompt: str, params: GenerationParams) -> _Completion:  # type: ignore[override]
        return FakeClient.generate(self, prompt, params)

    async def stream(self, prompt: str, params: GenerationParams) -> AsyncIterator[_Chunk]:  # type: ignore[override]
        self.sent.append((prompt, params))
        for chunk in self._chunks():
            yield chunk


class Fakes:
    """The sync and the async fake, seen as one: shared reply and one log of what was sent."""

    def __init__(self) -> None:
        self.sync, self.aio = FakeClient(), FakeAsyncClient()
        self.aio.sent = self.sync.sent
        self.sent = self.sync.sent

    def set_reply(self, reply: str) -> None:
        self.sync.reply = self.aio.reply = reply


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Fakes:
    fakes = Fakes()
    monkeypatch.setattr(SteerLM, "_sync_client", lambda self: fakes.sync)
    monkeypatch.setattr(SteerLM, "_async_client", lambda self: fakes.aio)
    return fakes


async def chat(llm: SteerLM, mode: str, messages: list[ChatMessage], **kwargs: Any) -> Any:
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


MODES = pytest.mark.parametrize("mode", ["sync", "async", "stream", "astream"])


# ---------------------------------------------------------------- construction and metadata

def test_defaults_metadata_and_class_name() -> None:
    llm = SteerLM(model=F1, max_tokens=300)
    meta = llm.metadata
    assert (meta.context_window, meta.num_output, meta.model_name) == (4096, 300, F1)
    assert meta.is_chat_model and meta.is_function_calling_model
    assert SteerLM.class_name() == "SteerLM"
    assert llm.client_options()["url"] == "grpc://localhost:8001"
    other = SteerLM(model="nemo-v2.0", profile="NV-Llama2-70B-RLHF-Chat")
    assert other.resolved_profile.name == "NV-Llama2-70B-RLHF-Chat"
    assert other.client_options()["model"] == "nemo-v2.0"


async def test_clients_are_lazy_cached_per_settings_and_copies_start_fresh() -> None:
    import copy
    import pickle

    llm = SteerLM(model=F1, url="grpc://127.0.0.1:9", verbosity=1)  # nothing listens: construction is offline
    client = llm._sync_client()
    assert llm._sync_client() is client
    assert llm.model_copy(update={"verbosity": 2})._sync_client() is client  # same settings, shared
    assert llm.model_copy(update={"url": "grpc://127.0.0.1:10"})._sync_client() is not client
    assert copy.deepcopy(llm)._sync_client() is not client
    assert pickle.loads(pickle.dumps(llm)).verbosity == 1
    aclient = llm._async_client()
    assert llm._async_client() is aclient and aclient is not client
    await llm.aclose()
    llm.close()
    assert llm._sync_client() is not client


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "nemo-v2.0"}, "pass profile="),
        ({"model": F1, "verbosity": 7}, "from 0 to 4"),
        ({"model": F1, "violence": 1}, "unknown steering attribute"),
        ({"model": F1, "attributes": {"verbosity": -1}}, "from 0 to 4"),
        ({"model": "nemo-v2.0", "profile": "Llama3-70B-PPO-Chat", "humor": 1}, "no steering attributes"),
        ({"model": F1, "url": "localhost"}, "invalid server url"),
        ({"model": F1, "timeout": 0}, "timeout"),
        ({"model": F1, "max_retries": -1}, "max_retries"),
        ({"model": F1, "max_tokens": 0}, "max_tokens"),
        ({"model": F1, "temperature": -0.5}, "temperature"),
        ({"model": F1, "profile": "nope"}, "unknown model profile"),
        ({"model": F1, "tokenizer": "/does/not/exist.json"}, "does not exist"),
    ],
)
def test_invalid_configuration_raises_configuration_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        SteerLM(**kwargs)


# ---------------------------------------------------------------- prompts and per-call options

@MODES
async def test_chat_renders_the_profile_template_with_per_call_options(fake: Any, mode: str) -> None:
    llm = SteerLM(model=F1, verbosity=1, temperature=0.2, max_tokens=64)
    response = await chat(llm, mode, USER, verbosity=0, humor=2, stop=["END"], seed=7)
    prompt, params = fake.sent[-1]
    attributes = {"verbosity": 0, "humor": 2}
    assert prompt == format_prompt([{"role": "user", "content": "Hi"}], profile=F1, attributes=attributes)
    assert params == GenerationParams(max_tokens=64, temperature=0.2, seed=7, stop=("END",))
    assert response.message.content == "Hello there friend"
    assert response.message.additional_kwargs["attributes"]["humor"] == 2
    assert response.additional_kwargs["attributes"] == response.raw["attributes"]
    assert response.raw["prompt"] == prompt
    assert response.additional_kwargs["finish_reason"] == "stop"


@MODES
async def test_complete_wraps_the_prompt_as_one_user_turn_unless_formatted(fake: Any, mode: str) -> None:
    llm = SteerLM(model=F1, system_prompt="Be terse.")
    response = await complete(llm, mode, "Hi", creativity=3)
    expected = format_prompt([{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}],
                             profile=F1, attributes={"creativity": 3})
    assert fake.sent[-1][0] == expected
    assert response.text == "Hello there friend"
    assert response.additional_kwargs["attributes"]["creativity"] == 3
    await complete(llm, mode, "RAW PROMPT", formatted=True)
    assert fake.sent[-1][0] == "RAW PROMPT"
    await complete(llm, mode, "Who?", context="Ada wrote it.")
    assert fake.sent[-1][0] == format_prompt(
        [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Who?"}], profile=F1,
        context="Ada wrote it.")


async def test_history_assistant_turns_keep_their_own_labels(fake: Any) -> None:
    llm = SteerLM(model=F1)
    first = llm.chat(USER, verbosity=0)
    history = [*USER, first.message, ChatMessage(role="user", content="More")]
    llm.chat(history, verbosity=4)
    prompt = fake.sent[-1][0]
    assert f"<extra_id_2>{LABELS},verbosity:0\nHello there friend\n" in prompt
    assert prompt.endswith(f"<extra_id_2>{LABELS},verbosity:4\n")


async def test_stream_yields_deltas_and_cumulative_text(fake: Any) -> None:
    llm = SteerLM(model=F1)
    chunks = list(llm.stream_chat(USER))
    assert [c.delta for c in chunks] == ["Hello ", "there ", "friend"]
    assert [c.message.content for c in chunks] == ["Hello ", "Hello there ", "Hello there friend"]
    assert [c.additional_kwargs["finish_reason"] for c in chunks] == [None, None, "stop"]
    texts = [r.text async for r in await llm.astream_complete("Hi")]
    assert texts == ["Hello ", "Hello there ", "Hello there friend"]


async def test_custom_prompt_hooks_are_honoured(fake: Any) -> None:
    llm = SteerLM(model=F1, messages_to_prompt=lambda ms: "|".join(m.content or "" for m in ms),
                  completion_to_prompt=lambda p: f"<<{p}>>")
    llm.chat([*USER, ChatMessage(role="user", content="there")])
    assert fake.sent[-1][0] == "Hi|there"
    await llm.acomplete("x")
    assert fake.sent[-1][0] == "<<x>>"
    with pytest.raises(ConfigurationError, match="messages_to_prompt"):
        llm.chat(USER, context="c")
    with pytest.raises(ConfigurationError, match=r"\['verbosity'\] need the profile's template"):
        llm.complete("x", verbosity=1)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"verbostiy": 1}, ConfigurationError, "unknown argument"),
        ({"verbosity": 9}, ConfigurationError, "from 0 to 4"),
        ({"context": 3}, ConfigurationError, "context must be a string"),
        ({"top_k": -1}, ConfigurationError, "top_k"),
    ],
)
async def test_invalid_per_call_options(fake: Any, kwargs: dict[str, Any], error: type, message: str) -> None:
    llm = SteerLM(model=F1)
    with pytest.raises(error, match=message):
        llm.chat(USER, **kwargs)
    with pytest.raises(error, match=message):
        await llm.acomplete("Hi", **kwargs)
    assert fake.sent == []


async def test_unrenderable_conversations_raise_prompt_error(fake: Any) -> None:
    llm = SteerLM(model=F1)
    with pytest.raises(PromptError):
        llm.chat([ChatMessage(role="assistant", content="only me")])
    with pytest.raises(ConfigurationError, match="formatted=True"):
        llm.complete("x", formatted=True, context="c")
    with pytest.raises(ConfigurationError, match="formatted=True"):
        llm.complete("x", formatted=True, attributes={"humor": 1})


# ---------------------------------------------------------------- usage and the context-window guard

class _WordTokenizer:
    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return ([1] if add_special_tokens else []) + [len(word) for word in text.split()]


@MODES
async def test_usage_is_counted_with_a_local_tokenizer(fake: Any, mode: str) -> None:
    llm = SteerLM(model=F1, tokenizer=_WordTokenizer())
    response = await complete(llm, mode, "Hi")
    prompt_tokens = len(fake.sent[-1][0].split()) + 1
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": 3, "total_tokens": prompt_tokens + 3}
    assert response.raw["usage"] == usage
    assert response.additional_kwargs["completion_tokens"] == 3
    with pytest.raises(ContextWindowExceededError):
        await complete(llm, mode, "Hi", max_tokens=4096)


# ---------------------------------------------------------------- tools

def get_weather(city: str) -> str:
    """Weather for a city."""
    return f"Sunny in {city}"


WEATHER = FunctionTool.from_defaults(fn=get_weather)
CALL = '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}, ' \
       '{"name": "get_weather", "arguments": {"city": "Rome"}}]}'


@MODES
async def test_chat_with_tools_offers_them_and_parses_the_calls(fake: Any, mode: str) -> None:
    fake.set_reply(CALL)
    llm = SteerLM(model=F1)
    kwargs = llm._prepare_chat_with_tools([WEATHER], user_msg="Weather in Paris?", tool_required=True)
    response = await chat(llm, mode, kwargs.pop("messages"), **kwargs)
    prompt = fake.sent[-1][0]
    assert [t["name"] for t in extract_offered_tools(prompt)] == ["get_weather"]
    assert "You must call at least one of these tools now." in prompt
    selections = llm.get_tool_calls_from_response(response)
    assert [(s.tool_name, s.tool_kwargs) for s in selections] == [("get_weather", {"city": "Paris"}),
                                                                   ("get_weather", {"city": "Rome"})]
    assert response.message.content == ""
    single = llm._validate_chat_with_tools_response(response, [WEATHER], allow_parallel_tool_calls=False)
    assert len(llm.get_tool_calls_from_response(single)) == 1


async def test_predict_and_call_and_tool_history(fake: Any) -> None:
    fake.set_reply(CALL)
    llm = SteerLM(model=F1)
    result = llm.predict_and_call([WEATHER], user_msg="Weather in Paris?", allow_parallel_tool_calls=True)
    assert result.response == "Sunny in Paris\n\nSunny in Rome"
    result = await llm.apredict_and_call([WEATHER], user_msg="Weather?", allow_parallel_tool_calls=True)
    assert len(result.sources) == 2
    call = ChatMessage(role="assistant", blocks=[ToolCallBlock(tool_call_id="c1", tool_name="get_weather",
                                                               tool_kwargs={"city": "Paris"})])
    tool = ChatMessage(role="tool", content="Sunny", additional_kwargs={"tool_call_id": "c1"})
    fake.set_reply("It is sunny.")
    response = llm.chat_with_tools([WEATHER], chat_history=[*USER, call, tool])
    prompt = fake.sent[-1][0]
    assert '{"tool_calls": [{"arguments": {"city": "Paris"}, "name": "get_weather"}]}' in prompt
    assert "<extra_id_1>User\nTool result (call c1):\nSunny\n" in prompt
    assert llm.get_tool_calls_from_response(response, error_on_no_tool_call=False) == []
    with pytest.raises(ValueError, match="Expected at least one tool call"):
        llm.get_tool_calls_from_response(response)


# ---------------------------------------------------------------- instrumentation

class _Recorder(BaseEventHandler):
    events: list[str]

    @classmethod
    def class_name(cls) -> str:
        return "Recorder"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event.class_name())


async def test_every_method_emits_start_and_end_events(fake: Any) -> None:
    recorder = _Recorder(events=[])
    dispatcher = get_dispatcher()
    dispatcher.add_event_handler(recorder)
    try:
        llm = SteerLM(model=F1)
        llm.chat(USER)
        llm.complete("Hi")
        list(llm.stream_chat(USER))
        list(llm.stream_complete("Hi"))
        await llm.achat(USER)
        await llm.acomplete("Hi")
        [r async for r in await llm.astream_chat(USER)]
        [r async for r in await llm.astream_complete("Hi")]
    finally:
        dispatcher.event_handlers.remove(recorder)
    starts = [e for e in recorder.events if e.endswith("StartEvent")]
    ends = [e for e in recorder.events if e.endswith("EndEvent")]
    assert starts.count("LLMChatStartEvent") == 4 and starts.count("LLMCompletionStartEvent") == 4
    assert ends.count("LLMChatEndEvent") == 4 and ends.count("LLMCompletionEndEvent") == 4


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
async def test_query_engine_prompts_use_the_closed_qa_template(fake: Any, mode: str) -> None:
    from llama_index.core.prompts.default_prompt_selectors import (
        DEFAULT_REFINE_PROMPT_SEL,
        DEFAULT_TEXT_QA_PROMPT_SEL,
    )

    from llamaindex_steerlm.prompts import REFINE_QUESTION
    from steerlm.prompts import closed_qa_text

    llm = SteerLM(model=F1)
    answer = await predict(llm, mode, DEFAULT_TEXT_QA_PROMPT_SEL.partial_format(query_str="Who {wrote} it?"),
                           context_str="Ada wrote it.")
    assert answer == "Hello there friend"
    assert fake.sent[-1][0] == format_prompt([{"role": "user", "content": "Who {wrote} it?"}], profile=F1,
                                             context="Ada wrote it.")
    refine = DEFAULT_REFINE_PROMPT_SEL.partial_format(query_str="Who?", existing_answer="Ada.")
    await predict(llm, mode, refine, context_msg="Ada Lovelace wrote it.")
    question = REFINE_QUESTION.format(query_str="Who?")
    assert fake.sent[-1][0] == format_prompt(
        [{"role": "user", "content": "Who?"}, {"role": "assistant", "content": "Ada."},
         {"role": "user", "content": closed_qa_text("Ada Lovelace wrote it.", question)}], profile=F1)
    off = SteerLM(model=F1, closed_qa=False)
    await predict(off, mode, DEFAULT_TEXT_QA_PROMPT_SEL.partial_format(query_str="Who?"), context_str="c")
    assert "Context information is below." in fake.sent[-1][0]
