"""llamaindex_steerlm.SteerLM against the real local Triton server (scripted models), sync and async.

Every I/O method runs in sync and async form (parametrized), over gRPC and HTTP where both apply; the
exact prompt and parameters the server received come from its request log. The concurrency tests run
many calls at once with the event loop's default executor cut to one thread, and check that they overlap
(wall time far below the sum of their durations): a thread fallback or a sequential loop could not.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage

from llamaindex_steerlm import SteerLM
from steerlm import InvalidRequestError, ModelNotFoundError, ServerUnavailableError, format_prompt
from steerlm_testing import LocalServer

CHAT = "Llama2-70B-SteerLM-Chat"
STREAMING = "Llama2-70B-SteerLM-Chat-streaming"
MODES = ["sync", "async", "stream", "astream"]


def make_llm(server: LocalServer, *, protocol: str = "grpc", streaming: bool = False, **kwargs: Any) -> SteerLM:
    url = server.grpc_url if protocol == "grpc" else server.http_url
    model = STREAMING if streaming else CHAT
    return SteerLM(model=model, profile=CHAT, url=url, max_retries=0, **kwargs)


async def run_chat(llm: SteerLM, mode: str, messages: list[ChatMessage], **kwargs: Any) -> tuple[Any, list[str]]:
    """The final response and the deltas (one per call for non-streaming modes)."""
    if mode == "sync":
        response = llm.chat(messages, **kwargs)
        return response, [response.message.content]
    if mode == "async":
        response = await llm.achat(messages, **kwargs)
        return response, [response.message.content]
    chunks = (list(llm.stream_chat(messages, **kwargs)) if mode == "stream"
              else [c async for c in await llm.astream_chat(messages, **kwargs)])
    return chunks[-1], [c.delta for c in chunks]


async def run_complete(llm: SteerLM, mode: str, prompt: str, **kwargs: Any) -> tuple[Any, list[str]]:
    if mode == "sync":
        response = llm.complete(prompt, **kwargs)
        return response, [response.text]
    if mode == "async":
        response = await llm.acomplete(prompt, **kwargs)
        return response, [response.text]
    chunks = (list(llm.stream_complete(prompt, **kwargs)) if mode == "stream"
              else [c async for c in await llm.astream_complete(prompt, **kwargs)])
    return chunks[-1], [c.delta for c in chunks]


def wire(server: LocalServer, model: str = CHAT) -> dict[str, Any]:
    """The inputs of the last request the model got: name -> flattened data."""
    inputs = server.last_request(model)["inputs"]
    return {name: tensor["data"] for name, tensor in inputs.items()}


@pytest.mark.parametrize("protocol", ["grpc", "http"])
@pytest.mark.parametrize("mode", MODES)
async def test_chat_sends_the_rendered_template_and_parameters(server: LocalServer, mode: str, protocol: str) -> None:
    llm = make_llm(server, protocol=protocol, max_tokens=32, temperature=0.5, verbosity=1)
    messages = [ChatMessage(role="system", content="Be brief."),
                ChatMessage(role="user", content="[[say=Paris is the capital.]] Capital of France?")]
    response, deltas = await run_chat(llm, mode, messages, verbosity=0, humor=2, top_k=1, seed=11, stop=["END"])
    assert response.message.content == "Paris is the capital."
    assert "".join(deltas) == "Paris is the capital."
    sent = wire(server)
    assert sent["prompts"] == [format_prompt(  # per-call verbosity=0 beats the field's verbosity=1
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": messages[1].content}],
        profile=CHAT, attributes={"verbosity": 0, "humor": 2})]
    assert (sent["max_output_len"], sent["top_k"], sent["temperature"], sent["random_seed"]) == ([32], [1], [0.5], [11])
    assert "END" in sent["stop_words_list"][0]  # with the profile's own stop strings
    assert response.message.additional_kwargs["attributes"]["humor"] == 2
    assert response.additional_kwargs["attributes"] == response.raw["attributes"]
    assert response.additional_kwargs["finish_reason"] in {"stop", "length"}
    assert response.raw["prompt"] == sent["prompts"][0]


@pytest.mark.parametrize("mode", MODES)
async def test_complete_wraps_one_user_turn_or_sends_verbatim(server: LocalServer, mode: str) -> None:
    llm = make_llm(server, streaming=mode in {"stream", "astream"})
    model = STREAMING if mode in {"stream", "astream"} else CHAT
    response, deltas = await run_complete(llm, mode, "[[say=one two three]] count", verbosity=0)
    assert response.text == "one two three"
    assert wire(server, model)["prompts"] == [
        format_prompt([{"role": "user", "content": "[[say=one two three]] count"}], profile=CHAT,
                      attributes={"verbosity": 0})]
    if mode in {"stream", "astream"}:
        assert len([d for d in deltas if d]) == 3  # decoupled model: one delta per token
    raw = "<extra_id_0>System\n\n<extra_id_1>User\n[[say=verbatim]]\n<extra_id_1>Assistant\n"
    response, _ = await run_complete(llm, mode, raw, formatted=True)
    assert response.text == "verbatim"
    assert wire(server, model)["prompts"] == [raw]


@pytest.mark.parametrize("mode", MODES)
async def test_closed_qa_context_per_call_and_history_labels(server: LocalServer, mode: str) -> None:
    llm = make_llm(server)
    question = [ChatMessage(role="user", content="[[say=Ada.]] Who wrote it?")]
    first, _ = await run_chat(llm, mode, question, context="Ada wrote the notes.", verbosity=0)
    assert wire(server)["prompts"] == [format_prompt([{"role": "user", "content": question[0].content}],
                                                     profile=CHAT, context="Ada wrote the notes.",
                                                     attributes={"verbosity": 0})]
    history = [*question, first.message, ChatMessage(role="user", content="[[say=ok]] And?")]
    await run_chat(llm, mode, history, verbosity=3)
    prompt = wire(server)["prompts"][0]
    assert "<extra_id_1>Assistant\n<extra_id_2>quality:4,toxicity:0,humor:0,creativity:0,helpfulness:4," \
           "correctness:4,coherence:4,complexity:4,verbosity:0\nAda.\n" in prompt
    assert prompt.endswith("verbosity:3\n")


# ---------------------------------------------------------------- native asyncio: calls overlap

CONCURRENT = 16
DELAY = 0.25  # per token; "[[say=ok N]]" is two tokens


async def _acomplete(llm: SteerLM, i: int) -> str:
    response = await llm.acomplete(f"[[say=ok {i}]][[delay={DELAY}]]")
    return str(response.text)


async def _achat(llm: SteerLM, i: int) -> str:
    messages = [ChatMessage(role="user", content=f"[[say=ok {i}]][[delay={DELAY}]]")]
    return (await llm.achat(messages)).message.content or ""


async def _astream_complete(llm: SteerLM, i: int) -> str:
    return "".join([r.delta or "" async for r in await llm.astream_complete(f"[[say=ok {i}]][[delay={DELAY}]]")])


async def _astream_chat(llm: SteerLM, i: int) -> str:
    messages = [ChatMessage(role="user", content=f"[[say=ok {i}]][[delay={DELAY}]]")]
    return "".join([r.delta or "" async for r in await llm.astream_chat(messages)])


@pytest.mark.slow
@pytest.mark.parametrize("call", [_acomplete, _achat, _astream_complete, _astream_chat], ids=lambda f: f.__name__)
async def test_async_methods_are_natively_concurrent(server: LocalServer, call: Any) -> None:
    llm = make_llm(server, streaming=call in (_astream_complete, _astream_chat))
    assert await call(llm, -1) == "ok -1"  # warm up: model config read, channel open
    # A thread fallback (run_in_executor / to_thread) would now run one call at a time.
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=1))
    started = time.perf_counter()
    results = await asyncio.gather(*(call(llm, i) for i in range(CONCURRENT)))
    elapsed = time.perf_counter() - started
    assert results == [f"ok {i}" for i in range(CONCURRENT)]
    one_call = 2 * DELAY
    assert elapsed < CONCURRENT * one_call / 2, f"{CONCURRENT} calls took {elapsed:.2f}s: they did not overlap"


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("mode", MODES)
async def test_in_band_server_error_is_raised_typed(server: LocalServer, mode: str) -> None:
    llm = make_llm(server)
    with pytest.raises(InvalidRequestError, match="boom"):
        await run_complete(llm, mode, "[[error=boom]]")


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_unknown_model_and_unreachable_server(server: LocalServer, mode: str) -> None:
    missing = SteerLM(model="no-such-model", profile=CHAT, url=server.grpc_url, max_retries=0,
                      client_kwargs={"ready_timeout": 0})
    with pytest.raises(ModelNotFoundError):
        await run_complete(missing, mode, "hi")
    closed = SteerLM(model=CHAT, url="grpc://127.0.0.1:1", max_retries=0, timeout=5,
                     client_kwargs={"ready_timeout": 0})
    with pytest.raises(ServerUnavailableError):
        await run_complete(closed, mode, "hi")
