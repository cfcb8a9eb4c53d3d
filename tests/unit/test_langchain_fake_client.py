"""ChatSteerLM / SteerLM call logic against an in-process fake core client (no server): callbacks,
native batching with per-input runs, streaming chunk layout, usage, the guard, error mapping.

Every behaviour with an I/O side is parametrized over sync and async.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.exceptions import ContextOverflowError, ModelTimeoutError
from langchain_core.messages import AIMessageChunk
from tokenizers import ByteLevelBPETokenizer

import steerlm.client
from langchain_steerlm import ChatSteerLM, SteerLM, _client
from steerlm.client import Completion, StreamChunk
from steerlm.errors import ContextWindowExceededError, RequestTimeoutError
from steerlm.params import GenerationParams


class FakeClient:
    """Answers every prompt with `reply` (or raises `error`); records calls."""

    reply = "one two three"
    error: Exception | None = None
    calls: ClassVar[list[tuple[str, list[str]]]] = []

    def __init__(self, model: str, url: Any = None, **kwargs: Any) -> None:
        self.model = model

    def _done(self, prompts: Sequence[str], kind: str) -> list[Completion]:
        FakeClient.calls.append((kind, list(prompts)))
        if FakeClient.error is not None:
            raise FakeClient.error
        return [Completion(FakeClient.reply, "stop", self.model, p) for p in prompts]

    def generate(self, prompt: str, params: GenerationParams | None = None) -> Completion:
        return self._done([prompt], "generate")[0]

    def batch(self, prompts: Sequence[str], params: GenerationParams | None = None) -> list[Completion]:
        return self._done(prompts, "batch")

    def stream(self, prompt: str, params: GenerationParams | None = None) -> Iterator[StreamChunk]:
        self._done([prompt], "stream")
        words = FakeClient.reply.split(" ")
        try:
            for index, word in enumerate(words):
                last = index == len(words) - 1
                yield StreamChunk(word if last else word + " ", "stop" if last else None)
        except GeneratorExit:  # closed before its end
            FakeClient.calls.append(("stream closed", [prompt]))
            raise

    def close(self) -> None:
        pass


class AsyncFakeClient(FakeClient):
    closed = 0

    async def generate(self, prompt: str, params: GenerationParams | None = None) -> Completion:  # type: ignore[override]
        return super().generate(prompt, params)

    async def batch(self, prompts: Sequence[str],  # type: ignore[override]
                    params: GenerationParams | None = None) -> list[Completion]:
        return super().batch(prompts, params)

    async def stream(self, prompt: str,  # type: ignore[override]
                     params: GenerationParams | None = None) -> AsyncIterator[StreamChunk]:
        pieces = super().stream(prompt, params)
        try:
            for chunk in pieces:
                yield chunk
        finally:
            pieces.close()  # type: ignore[attr-defined]

    async def close(self) -> None:  # type: ignore[override]
        AsyncFakeClient.closed += 1


@pytest.fixture(autouse=True)
def fake_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[FakeClient]]:
    monkeypatch.setattr(steerlm.client, "SteerLMClient", FakeClient)
    monkeypatch.setattr(steerlm.client, "AsyncSteerLMClient", AsyncFakeClient)
    _client.close_clients()
    FakeClient.calls, FakeClient.error, FakeClient.reply = [], None, "one two three"
    yield FakeClient
    _client.close_clients()


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory) -> str:
    trained = ByteLevelBPETokenizer()
    trained.train_from_iterator(["one two three, hello world"] * 10, vocab_size=300, min_frequency=1,
                                show_progress=False)
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    trained.save(str(path))
    return str(path)


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


def run(async_api: bool, sync_call: Any, async_call: Any) -> Any:
    return asyncio.run(async_call()) if async_api else sync_call()


@pytest.mark.parametrize("async_api", [False, True])
def test_batch_sends_one_request_and_keeps_per_input_callbacks(async_api: bool) -> None:
    model = ChatSteerLM(verbosity=1)
    handlers = [Recorder() for _ in range(3)]
    configs: Any = [{"callbacks": [h]} for h in handlers]
    inputs: Any = ["a", "b", "c"]
    replies = run(async_api, lambda: model.batch(inputs, configs),
                  lambda: model.abatch(inputs, configs))
    assert [kind for kind, _ in FakeClient.calls] == ["batch"]
    assert len(FakeClient.calls[0][1]) == 3 and "verbosity:1" in FakeClient.calls[0][1][0]
    assert [r.content for r in replies] == ["one two three"] * 3
    assert [h.events for h in handlers] == [["start", "end"]] * 3
    assert len({r.id for r in replies}) == 3


@pytest.mark.parametrize("async_api", [False, True])
def test_a_failed_batch_request_fails_every_input_through_its_own_run(async_api: bool) -> None:
    FakeClient.error = RequestTimeoutError("slow")
    model = ChatSteerLM()
    handler = Recorder()
    inputs: Any = ["a", "b"]
    results = run(async_api, lambda: model.batch(inputs, {"callbacks": [handler]}, return_exceptions=True),
                  lambda: model.abatch(inputs, {"callbacks": [handler]}, return_exceptions=True))
    assert all(isinstance(r, ModelTimeoutError) and isinstance(r, RequestTimeoutError) for r in results)
    assert [kind for kind, _ in FakeClient.calls] == ["batch"]
    assert handler.events.count("error:SteerLMTimeoutError") == 2


@pytest.mark.parametrize("async_api", [False, True])
def test_streaming_models_and_bad_inputs_use_the_per_input_path(async_api: bool) -> None:
    inputs: Any = ["a", []]  # the empty conversation cannot be rendered
    results = run(async_api, lambda: ChatSteerLM().batch(inputs, return_exceptions=True),
                  lambda: ChatSteerLM().abatch(inputs, return_exceptions=True))
    assert results[0].content == "one two three" and isinstance(results[1], Exception)
    assert [kind for kind, _ in FakeClient.calls] == ["generate"]
    FakeClient.calls.clear()
    streaming = ChatSteerLM(streaming=True)
    two: Any = ["a", "b"]
    run(async_api, lambda: streaming.batch(two), lambda: streaming.abatch(two))
    assert [kind for kind, _ in FakeClient.calls] == ["stream", "stream"]


@pytest.mark.parametrize("async_api", [False, True])
def test_stream_chunks_metadata_and_usage_once(async_api: bool, tokenizer: str) -> None:
    model = ChatSteerLM(tokenizer=tokenizer)
    handler = Recorder()

    async def collect() -> list[AIMessageChunk]:
        return [c async for c in model.astream("hi", {"callbacks": [handler]})]

    chunks = run(async_api, lambda: list(model.stream("hi", {"callbacks": [handler]})), collect)
    assert [c.content for c in chunks] == ["one ", "two ", "three"]
    assert chunks[-1].chunk_position == "last"
    assert [bool(c.usage_metadata) for c in chunks] == [False, False, True]
    assert [bool(c.response_metadata.get("model_name")) for c in chunks] == [False, False, True]
    full = chunks[0] + chunks[1] + chunks[2]
    assert full.usage_metadata is not None
    assert full.usage_metadata["output_tokens"] == model.token_counter.count("one two three")  # type: ignore[union-attr]
    assert [e for e in handler.events if e.startswith("token:")] == ["token:one ", "token:two ", "token:three"]


def test_stream_tolerates_no_run_manager() -> None:
    model = ChatSteerLM()
    chunks = list(model._stream(model._convert_input("hi").to_messages(), run_manager=None))
    assert "".join(c.text for c in chunks) == "one two three"


@pytest.mark.parametrize("async_api", [False, True])
def test_tools_offered_replies_arrive_parsed_in_the_last_chunk(async_api: bool) -> None:
    FakeClient.reply = 'Let me check. {"tool_calls": [{"name": "f", "arguments": {"x": 1}}]}'

    def f(x: int) -> int:
        """F."""
        return x

    bound = ChatSteerLM().bind_tools([f])

    async def collect() -> list[Any]:
        return [c async for c in bound.astream("hi")]

    chunks = run(async_api, lambda: list(bound.stream("hi")), collect)
    assert len(chunks) == 1 and chunks[0].tool_calls[0]["args"] == {"x": 1}
    assert chunks[0].content == "Let me check."


@pytest.mark.parametrize("async_api", [False, True])
def test_context_overflow_is_raised_before_sending(async_api: bool, tokenizer: str) -> None:
    model = ChatSteerLM(tokenizer=tokenizer, max_tokens=4000)
    with pytest.raises(ContextOverflowError) as info:
        run(async_api, lambda: model.invoke("hello world " * 60), lambda: model.ainvoke("hello world " * 60))
    assert isinstance(info.value, ContextWindowExceededError)
    assert FakeClient.calls == []


@pytest.mark.parametrize("async_api", [False, True])
def test_llm_wraps_the_prompt_and_reports_usage(async_api: bool, tokenizer: str) -> None:
    llm = SteerLM(tokenizer=tokenizer, humor=2)
    result = run(async_api, lambda: llm.generate(["a", "b"]), lambda: llm.agenerate(["a", "b"]))
    assert [kind for kind, _ in FakeClient.calls] == ["batch"]
    assert FakeClient.calls[0][1][0].endswith("<extra_id_1>User\na\n<extra_id_1>Assistant\n<extra_id_2>quality:4,"
                                              "toxicity:0,humor:2,creativity:0,helpfulness:4,correctness:4,"
                                              "coherence:4,complexity:4,verbosity:4\n")
    info = result.generations[0][0].generation_info
    assert info["steerlm_attributes"]["humor"] == 2 and info["finish_reason"] == "stop"
    assert result.llm_output["token_usage"]["output_tokens"] == 2 * llm.token_counter.count("one two three")  # type: ignore[union-attr]


@pytest.mark.parametrize("async_api", [False, True])
def test_llm_raw_prompt_is_sent_verbatim(async_api: bool) -> None:
    llm = SteerLM(raw_prompt=True)
    text = run(async_api, lambda: llm.invoke("<extra_id_0>System\n\nverbatim"),
               lambda: llm.ainvoke("<extra_id_0>System\n\nverbatim"))
    assert text == "one two three" and FakeClient.calls[0][1] == ["<extra_id_0>System\n\nverbatim"]
    handler = Recorder()
    streamed = "".join(SteerLM(streaming=True).stream("x", {"callbacks": [handler]}))
    assert streamed == "one two three" and handler.events[1:4] == ["token:one ", "token:two ", "token:three"]


@pytest.mark.parametrize("async_api", [False, True])
def test_llm_streaming_invoke_aggregates(async_api: bool) -> None:
    llm = SteerLM(streaming=True)
    handler = Recorder()
    config: Any = {"callbacks": [handler]}
    assert run(async_api, lambda: llm.invoke("x", config), lambda: llm.ainvoke("x", config)) == "one two three"
    assert [kind for kind, _ in FakeClient.calls] == ["stream"]
    assert [e for e in handler.events if e.startswith("token:")] == ["token:one ", "token:two ", "token:three"]


def test_tokenizer_gives_token_ids(tokenizer: str) -> None:
    model = ChatSteerLM(tokenizer=Path(tokenizer))
    assert model.get_num_tokens("one two") == model.token_counter.count("one two")  # type: ignore[union-attr]


def test_async_clients_close_when_their_event_loop_shuts_down() -> None:
    AsyncFakeClient.closed = 0
    model = ChatSteerLM()
    for _ in range(3):
        asyncio.run(model.ainvoke("hi"))
    assert AsyncFakeClient.closed == 3  # one client per loop, closed by asyncio.run's shutdown

    async def explicit() -> int:
        await model.ainvoke("hi")
        await _client.aclose_clients()
        return AsyncFakeClient.closed

    assert asyncio.run(explicit()) == 4 and AsyncFakeClient.closed == 4


@pytest.mark.parametrize("cls", [ChatSteerLM, SteerLM])
@pytest.mark.parametrize("async_api", [False, True])
def test_stopping_a_stream_early_closes_the_core_stream(cls: type[Any], async_api: bool) -> None:
    model = cls()

    async def first_async() -> Any:
        stream = model.astream("hi")
        first = await anext(stream)
        await stream.aclose()
        return first

    def first_sync() -> Any:
        stream = model.stream("hi")
        first = next(stream)
        stream.close()
        return first

    first = run(async_api, first_sync, first_async)
    assert getattr(first, "content", first) == "one "
    assert [kind for kind, _ in FakeClient.calls] == ["stream", "stream closed"]
