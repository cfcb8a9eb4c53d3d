"""ChatSteerLM / SteerLM call paths against the real local Triton server: callbacks, native batching
with per-input runs, streaming chunk layout, usage, errors of a batch request, early stream close.
(The async clients' lifetime, for both adapters: test_client_lifetime.py.)

What was sent is read from the server's request log (exact prompts, rows per request); replies come
from the scripted model's ``[[say=...]]`` directive (``\\u003cextra_id_1>`` at its end is the model's
end-of-turn marker, so the reply finishes with "stop"). Every behaviour with an I/O side runs sync and
async.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Generator
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.exceptions import ModelTimeoutError
from langchain_core.messages import AIMessageChunk
from tokenizers import ByteLevelBPETokenizer

from langchain_steerlm import ChatSteerLM, SteerLM, chat_models
from steerlm.client import AsyncSteerLMClient, SteerLMClient, StreamChunk
from steerlm.errors import PromptError, RequestTimeoutError
from steerlm.params import GenerationParams
from steerlm.profiles import STEERLM_SYSTEM_PROMPT
from steerlm.tokens import load_token_counter
from steerlm_testing import LocalServer

MODEL = "Llama2-70B-SteerLM-Chat"
STREAMING = "Llama2-70B-SteerLM-Chat-streaming"
END = "\\u003cextra_id_1>"  # in a [[say=...]] value: the end-of-turn marker
ASYNC = pytest.mark.parametrize("async_api", [False, True], ids=["sync", "async"])


def run(async_api: bool, sync_call: Callable[[], Any], async_call: Callable[[], Any]) -> Any:
    return asyncio.run(async_call()) if async_api else sync_call()


def rows(server: LocalServer, model: str = MODEL) -> list[list[str]]:
    """The prompts of each request the model received, in order."""
    return [r["inputs"]["prompts"]["data"] for r in server.requests(model)]


def wire_prompt(user: str, labels: str) -> str:
    return (f"<extra_id_0>System\n{STEERLM_SYSTEM_PROMPT}\n<extra_id_1>User\n{user}\n<extra_id_1>Assistant\n"
            f"<extra_id_2>{labels}\n")


def labels(**values: int) -> str:
    defaults = {"quality": 4, "toxicity": 0, "humor": 0, "creativity": 0, "helpfulness": 4, "correctness": 4,
                "coherence": 4, "complexity": 4, "verbosity": 4}
    return ",".join(f"{k}:{v}" for k, v in {**defaults, **values}.items())


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.events: list[str] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.events.append("start")

    def on_llm_start(self, serialized: Any, prompts: Any, **kwargs: Any) -> None:
        self.events.append("start")

    def on_llm_new_token(self, token: str, **kwargs: Any) -> None:
        self.events.append(f"token:{token}")

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.events.append("end")

    def on_llm_error(self, error: BaseException, **kwargs: Any) -> None:
        self.events.append(f"error:{type(error).__name__}")

    @property
    def tokens(self) -> list[str]:
        return [e.removeprefix("token:") for e in self.events if e.startswith("token:")]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> str:
    trained = ByteLevelBPETokenizer()
    trained.train_from_iterator([STEERLM_SYSTEM_PROMPT, labels(), "one two three"] * 10, vocab_size=400,
                                min_frequency=1, show_progress=False)
    path = tmp_path_factory.mktemp("tokenizer") / "tokenizer.json"
    trained.save(str(path))
    return str(path)


# ---------------------------------------------------------------- native batching

@ASYNC
def test_batch_sends_one_request_and_keeps_per_input_callbacks(server: LocalServer, async_api: bool) -> None:
    model = ChatSteerLM(model=MODEL, url=server.grpc_url, verbosity=1)
    handlers = [Recorder() for _ in range(3)]
    configs: Any = [{"callbacks": [h]} for h in handlers]
    inputs: Any = ["[[say=one]]", "[[say=two]]", "[[say=three]]"]
    replies = run(async_api, lambda: model.batch(inputs, configs), lambda: model.abatch(inputs, configs))
    assert rows(server) == [[wire_prompt(i, labels(verbosity=1)) for i in inputs]]  # ONE request, 3 rows
    assert [r.content for r in replies] == ["one", "two", "three"]
    assert [h.events for h in handlers] == [["start", "end"]] * 3  # each input: its own run
    assert len({r.id for r in replies}) == 3


class Runs(BaseCallbackHandler):
    """Records each chat-model run: its id and tags at start, its end."""

    def __init__(self) -> None:
        self.started: list[tuple[Any, tuple[str, ...]]] = []
        self.ended: list[Any] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: Any, tags: Any = None,
                            **kwargs: Any) -> None:
        self.started.append((run_id, tuple(tags or ())))

    def on_llm_end(self, response: Any, *, run_id: Any, **kwargs: Any) -> None:
        self.ended.append(run_id)


@ASYNC
def test_batch_with_one_config_renders_each_input_once_and_keeps_a_run_per_input(
    server: LocalServer, async_api: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = ChatSteerLM(model=MODEL, url=server.grpc_url)
    rendered: list[str] = []
    real_render = chat_models.render

    def counting_render(*args: Any, **kwargs: Any) -> str:
        rendered.append(real_render(*args, **kwargs))
        return rendered[-1]

    monkeypatch.setattr(chat_models, "render", counting_render)
    runs = Runs()
    config: Any = {"callbacks": [runs], "tags": ["mine"]}
    inputs: Any = ["[[say=one]]", "[[say=two]]", "[[say=three]]"]
    replies = run(async_api, lambda: model.batch(inputs, config), lambda: model.abatch(inputs, config))
    assert [r.content for r in replies] == ["one", "two", "three"]
    assert rows(server) == [[wire_prompt(i, labels()) for i in inputs]]  # ONE request, 3 rows
    assert rendered == rows(server)[0]  # each input rendered once, in order
    assert len({run_id for run_id, _ in runs.started}) == 3 and all("mine" in t for _, t in runs.started)
    assert sorted(map(str, runs.ended)) == sorted(str(run_id) for run_id, _ in runs.started)


@ASYNC
def test_a_failed_batch_request_fails_every_input_through_its_own_run(server: LocalServer, async_api: bool) -> None:
    model = ChatSteerLM(model=MODEL, url=server.grpc_url, timeout=0.5, max_retries=0)
    handler = Recorder()
    inputs: Any = ["[[sleep=1]] a", "b"]  # the request sleeps past the client timeout
    config: Any = {"callbacks": [handler]}
    results = run(async_api, lambda: model.batch(inputs, config, return_exceptions=True),
                  lambda: model.abatch(inputs, config, return_exceptions=True))
    assert all(isinstance(r, ModelTimeoutError) and isinstance(r, RequestTimeoutError) for r in results)
    assert [len(r) for r in rows(server)] == [2]  # the one batch request, not a retry per input
    assert handler.events.count("error:SteerLMTimeoutError") == 2
    ChatSteerLM(model=MODEL, url=server.grpc_url, max_tokens=1).invoke("drain")  # waits out the sleep


@ASYNC
def test_streaming_models_and_bad_inputs_use_the_per_input_path(server: LocalServer, async_api: bool) -> None:
    model = ChatSteerLM(model=MODEL, url=server.grpc_url)
    inputs: Any = ["[[say=fine]]", []]  # the empty conversation cannot be rendered
    results = run(async_api, lambda: model.batch(inputs, return_exceptions=True),
                  lambda: model.abatch(inputs, return_exceptions=True))
    assert results[0].content == "fine" and isinstance(results[1], PromptError)
    assert rows(server) == [[wire_prompt("[[say=fine]]", labels())]]
    streaming = ChatSteerLM(model=STREAMING, profile=MODEL, url=server.grpc_url, streaming=True)
    two: Any = ["[[say=a]]", "[[say=b]]"]
    replies = run(async_api, lambda: streaming.batch(two), lambda: streaming.abatch(two))
    assert [r.content for r in replies] == ["a", "b"]
    assert sorted(rows(server, STREAMING)) == [[wire_prompt(p, labels())] for p in two]  # one stream each


# ---------------------------------------------------------------- streaming

@ASYNC
def test_stream_chunks_metadata_and_usage_once(server: LocalServer, async_api: bool, tokenizer: str) -> None:
    model = ChatSteerLM(model=STREAMING, profile=MODEL, url=server.grpc_url, tokenizer=tokenizer)
    handler = Recorder()
    config: Any = {"callbacks": [handler]}

    async def collect() -> list[AIMessageChunk]:
        return [c async for c in model.astream(f"[[say=one two three{END}]]", config)]

    chunks = run(async_api, lambda: list(model.stream(f"[[say=one two three{END}]]", config)), collect)
    # One chunk per token, then the last (empty) chunk with the finish reason, metadata and usage.
    assert [c.content for c in chunks] == ["one ", "two ", "three", ""]
    assert [c.chunk_position for c in chunks] == [None, None, None, "last"]
    assert [bool(c.usage_metadata) for c in chunks] == [False, False, False, True]
    assert [c.response_metadata.get("model_name") for c in chunks] == [None, None, None, STREAMING]
    assert chunks[-1].response_metadata["finish_reason"] == "stop"
    full = chunks[0] + chunks[1] + chunks[2] + chunks[3]
    counter = load_token_counter(tokenizer)
    (wire,) = rows(server, STREAMING)
    assert full.usage_metadata is not None
    assert full.usage_metadata["input_tokens"] == counter.count(wire[0], add_special_tokens=True)
    assert full.usage_metadata["output_tokens"] == counter.count("one two three")
    assert handler.tokens == ["one ", "two ", "three", ""]


@ASYNC
def test_stream_tolerates_no_run_manager(server: LocalServer, async_api: bool) -> None:
    model = ChatSteerLM(model=STREAMING, profile=MODEL, url=server.grpc_url)
    messages = model._convert_input("[[say=a b]]").to_messages()

    async def collect() -> list[Any]:
        return [c async for c in model._astream(messages, run_manager=None)]

    chunks = run(async_api, lambda: list(model._stream(messages, run_manager=None)), collect)
    assert "".join(c.text for c in chunks) == "a b"


@ASYNC
def test_tools_offered_prose_streams_and_the_call_arrives_parsed_in_the_last_chunk(server: LocalServer,
                                                                                   async_api: bool) -> None:
    def f(x: int) -> int:
        """F."""
        return x

    reply = 'Let me check. {"tool_calls": [{"name": "f", "arguments": {"x": 1}}]}'
    bound = ChatSteerLM(model=STREAMING, profile=MODEL, url=server.grpc_url).bind_tools([f])

    async def collect() -> list[Any]:
        return [c async for c in bound.astream(f"[[say={reply}]]")]

    chunks = run(async_api, lambda: list(bound.stream(f"[[say={reply}]]")), collect)
    assert [c.content for c in chunks[:-1]] == ["Let ", "me ", "check. "]  # prose streams token by token
    last = chunks[-1]  # the protocol part is held back and parsed, never shown as text
    assert last.content == "" and last.tool_calls[0]["args"] == {"x": 1}
    assert last.response_metadata["finish_reason"] == "tool_calls"


@pytest.mark.parametrize("cls", [ChatSteerLM, SteerLM])
@ASYNC
def test_stopping_a_stream_early_closes_the_core_stream(server: LocalServer, monkeypatch: pytest.MonkeyPatch,
                                                        cls: type[Any], async_api: bool) -> None:
    # A spy around the real client's stream (it calls through): did the adapter close the core stream
    # (and so cancel the server stream) when its caller stopped, or leave it to the garbage collector?
    closed: list[str] = []
    real_stream, real_astream = SteerLMClient.stream, AsyncSteerLMClient.stream

    def stream(self: SteerLMClient, prompt: str, params: GenerationParams | None = None,
               **options: Any) -> Generator[StreamChunk, None, None]:
        try:
            yield from real_stream(self, prompt, params, **options)
        except GeneratorExit:
            closed.append("stream")
            raise

    async def astream(self: AsyncSteerLMClient, prompt: str, params: GenerationParams | None = None,
                      **options: Any) -> AsyncIterator[StreamChunk]:
        pieces = real_astream(self, prompt, params, **options)
        try:
            async for piece in pieces:
                yield piece
        except GeneratorExit:
            closed.append("astream")
            raise
        finally:
            await pieces.aclose()

    monkeypatch.setattr(SteerLMClient, "stream", stream)
    monkeypatch.setattr(AsyncSteerLMClient, "stream", astream)
    model = cls(model=STREAMING, profile=MODEL, url=server.grpc_url)
    prompt = "[[say=a b c d e f]][[delay=0.2]]"

    async def first_async() -> tuple[Any, list[str]]:
        pieces = model.astream(prompt)
        first = await anext(pieces)
        await pieces.aclose()
        return first, list(closed)  # closed by now, not later by the loop's async-generator finalizer

    def first_sync() -> tuple[Any, list[str]]:
        pieces = model.stream(prompt)
        first = next(pieces)
        pieces.close()
        return first, list(closed)

    first, closed_by_then = run(async_api, first_sync, first_async)
    assert getattr(first, "content", first) == "a "
    assert closed_by_then == ["astream" if async_api else "stream"]
    assert len(server.requests(STREAMING)) == 1


# ---------------------------------------------------------------- the string LLM

@ASYNC
def test_llm_wraps_the_prompt_and_reports_usage(server: LocalServer, async_api: bool, tokenizer: str) -> None:
    llm = SteerLM(model=MODEL, url=server.grpc_url, tokenizer=tokenizer, humor=2)
    prompts = [f"[[say=one two three{END}]] a", f"[[say=one two three{END}]] b"]
    result = run(async_api, lambda: llm.generate(prompts), lambda: llm.agenerate(prompts))
    assert rows(server) == [[wire_prompt(p, labels(humor=2)) for p in prompts]]  # ONE request, 2 rows
    assert [g[0].text for g in result.generations] == ["one two three"] * 2
    info = result.generations[0][0].generation_info
    assert info is not None
    assert info["steerlm_attributes"]["humor"] == 2 and info["finish_reason"] == "stop"
    counter = load_token_counter(tokenizer)
    assert result.llm_output is not None
    usage = result.llm_output["token_usage"]
    assert usage["output_tokens"] == 2 * counter.count("one two three")
    assert usage["input_tokens"] == sum(counter.count(p, add_special_tokens=True) for p in rows(server)[0])


@ASYNC
def test_llm_raw_prompt_field_sends_prompts_verbatim(server: LocalServer, async_api: bool) -> None:
    llm = SteerLM(model=MODEL, url=server.grpc_url, raw_prompt=True)
    raw = "<extra_id_0>System\n\n<extra_id_1>User\n[[say=verbatim]]\n<extra_id_1>Assistant\n"
    assert run(async_api, lambda: llm.invoke(raw), lambda: llm.ainvoke(raw)) == "verbatim"
    assert rows(server) == [[raw]]


@ASYNC
def test_llm_streaming_invoke_aggregates(server: LocalServer, async_api: bool) -> None:
    llm = SteerLM(model=STREAMING, profile=MODEL, url=server.grpc_url, streaming=True)
    handler = Recorder()
    config: Any = {"callbacks": [handler]}
    prompt = f"[[say=one two three{END}]]"
    assert run(async_api, lambda: llm.invoke(prompt, config), lambda: llm.ainvoke(prompt, config)) == "one two three"
    assert len(rows(server, STREAMING)) == 1 and rows(server) == []  # one stream, no unary request
    assert handler.tokens == ["one ", "two ", "three", ""]


@ASYNC
def test_llm_stream_fires_token_callbacks(server: LocalServer, async_api: bool) -> None:
    llm = SteerLM(model=STREAMING, profile=MODEL, url=server.grpc_url)
    handler = Recorder()
    config: Any = {"callbacks": [handler]}

    async def collect() -> list[str]:
        return [t async for t in llm.astream("[[say=one two three]]", config)]

    pieces = run(async_api, lambda: list(llm.stream("[[say=one two three]]", config)), collect)
    assert pieces == ["one ", "two ", "three", ""]  # the last, empty piece carries the metadata
    assert handler.events == ["start", "token:one ", "token:two ", "token:three", "token:", "end"]
