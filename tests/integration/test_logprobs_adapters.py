"""Log-probabilities through both adapters against real loopback servers (Triton's vLLM backend, which streams
token by token; NeMo's Megatron deployable, unary; the OpenAI-compatible double):

* LangChain ``ChatSteerLM``: ``response_metadata["logprobs"]`` in ChatOpenAI's shape
  (``{"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}``) on invoke, and on the streamed
  chunks, so the merged chunk holds every entry; the string LLM ``SteerLM``: OpenAI's legacy completions shape
  in ``generation_info["logprobs"]``;
* LlamaIndex ``SteerLM``: ``ChatResponse.logprobs`` / ``CompletionResponse.logprobs`` (per token, its likeliest
  alternatives as ``LogProb``s) on chat / complete and their streams (each response: every entry so far).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage
from llama_index.core.base.llms.types import ChatMessage

from langchain_steerlm import ChatSteerLM
from langchain_steerlm import SteerLM as LangChainLLM
from llamaindex_steerlm import SteerLM
from steerlm.errors import ConfigurationError
from steerlm.serve.token_stats import distribution
from steerlm_testing import LocalServer
from steerlm_testing.openai_double import OpenAIDouble

pytestmark = [pytest.mark.timeout(180)]

PROFILE = "Llama2-70B-SteerLM-Chat"
USER = "[[say=one two three\\n\\u003cextra_id_1>User\\nmore]]"
TOKENS = ["one ", "two ", "three", "\n", "<extra_id_1>"]  # generated through the end-of-turn marker
OPENAI_TOKENS = ["one ", "two ", "three", "\n"]  # vLLM's OpenAI server leaves the stop out
MODES = ("invoke", "ainvoke", "stream", "astream")


@pytest.fixture
def double() -> Iterator[OpenAIDouble]:
    with OpenAIDouble() as server:
        yield server


def target(name: str, server: LocalServer, double: OpenAIDouble) -> tuple[str, str, list[str]]:
    if name == "openai":
        return double.model, double.url, OPENAI_TOKENS
    return name, server.grpc_url, TOKENS


def expected_openai_entry(token: str, top: int) -> dict[str, Any]:
    ranked = distribution(token)
    return {"token": token, "logprob": pytest.approx(ranked[0][1], abs=1e-5), "bytes": list(token.encode()),
            "top_logprobs": [{"token": t, "logprob": pytest.approx(v, abs=1e-5), "bytes": list(t.encode())}
                             for t, v in ranked[:top]]}


async def _lc(chat: ChatSteerLM, mode: str) -> tuple[Any, int]:
    """The reply (the merged chunk when streaming) and how many chunks carried log-probabilities."""
    messages = [HumanMessage(USER)]
    if mode == "invoke":
        return chat.invoke(messages), 1
    if mode == "ainvoke":
        return await chat.ainvoke(messages), 1
    chunks = list(chat.stream(messages)) if mode == "stream" else [c async for c in chat.astream(messages)]
    total: AIMessageChunk = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    return total, sum(1 for c in chunks if "logprobs" in c.response_metadata)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", ["vllm_model", "megatron-deployable", "openai"])
def test_chatsteerlm_response_metadata_logprobs(current_server: LocalServer, double: OpenAIDouble, name: str,
                                                mode: str) -> None:
    model, url, tokens = target(name, current_server, double)
    chat = ChatSteerLM(model=model, url=url, profile=PROFILE, max_retries=0, max_tokens=32, top_logprobs=2)
    reply, carried = asyncio.run(_lc(chat, mode))
    assert reply.content == "one two three"
    assert reply.response_metadata["logprobs"] == {"content": [expected_openai_entry(t, 2) for t in tokens]}
    assert reply.response_metadata["finish_reason"] == "stop"
    if mode.endswith("stream") and name != "megatron-deployable":  # a native stream: entries ride on chunks
        assert carried > 1


def test_chatsteerlm_per_call_logprobs_and_clear_refusal(current_server: LocalServer) -> None:
    chat = ChatSteerLM(model="vllm_model", url=current_server.grpc_url, profile=PROFILE, max_retries=0)
    assert "logprobs" not in chat.invoke(USER).response_metadata
    content = chat.invoke(USER, logprobs=True).response_metadata["logprobs"]["content"]
    assert [e["token"] for e in content] == TOKENS and all(e["top_logprobs"] == [] for e in content)
    hf = ChatSteerLM(model="hf-deployable", url=current_server.grpc_url, profile=PROFILE, max_retries=0)
    with pytest.raises(ConfigurationError, match="returns no log-probabilities"):
        hf.invoke(USER, logprobs=True)
    with pytest.raises(ConfigurationError, match="top_logprobs must be at most 20"):
        chat.invoke(USER, top_logprobs=21)


@pytest.mark.parametrize("streaming", [False, True])
def test_langchain_string_llm_generation_info(current_server: LocalServer, streaming: bool) -> None:
    llm = LangChainLLM(model="vllm_model", url=current_server.grpc_url, profile=PROFILE, max_retries=0,
                       top_logprobs=1, streaming=streaming)
    result = llm.generate([USER])
    info = result.generations[0][0].generation_info or {}
    assert info["logprobs"]["tokens"] == TOKENS
    assert info["logprobs"]["token_logprobs"] == pytest.approx([distribution(t)[0][1] for t in TOKENS], abs=1e-5)
    assert [list(top) for top in info["logprobs"]["top_logprobs"]] == [[t] for t in TOKENS]


def _llama_calls(llm: SteerLM, kind: str) -> tuple[Any, list[Any]]:
    """The final response of `kind` (chat / complete, sync / async, plain / stream) and every response."""
    messages = [ChatMessage(role="user", content=USER)]

    async def run() -> list[Any]:
        if kind == "chat":
            return [llm.chat(messages)]
        if kind == "achat":
            return [await llm.achat(messages)]
        if kind == "complete":
            return [llm.complete(USER)]
        if kind == "acomplete":
            return [await llm.acomplete(USER)]
        if kind == "stream_chat":
            return list(llm.stream_chat(messages))
        if kind == "astream_chat":
            return [r async for r in await llm.astream_chat(messages)]
        if kind == "stream_complete":
            return list(llm.stream_complete(USER))
        return [r async for r in await llm.astream_complete(USER)]

    responses = asyncio.run(run())
    return responses[-1], responses


@pytest.mark.parametrize("kind", ["chat", "achat", "complete", "acomplete", "stream_chat", "astream_chat",
                                  "stream_complete", "astream_complete"])
@pytest.mark.parametrize("name", ["vllm_model", "openai"])
def test_llamaindex_response_logprobs(current_server: LocalServer, double: OpenAIDouble, name: str,
                                      kind: str) -> None:
    model, url, tokens = target(name, current_server, double)
    llm = SteerLM(model=model, url=url, profile=PROFILE, max_retries=0, max_tokens=32, top_logprobs=2)
    last, responses = _llama_calls(llm, kind)
    text = last.message.content if "chat" in kind else last.text
    assert text == "one two three"
    assert last.logprobs is not None and len(last.logprobs) == len(tokens)
    for alternatives, token in zip(last.logprobs, tokens, strict=True):
        ranked = distribution(token)[:2]
        assert [(p.token, p.bytes) for p in alternatives] == [(t, list(t.encode())) for t, _ in ranked]
        assert [p.logprob for p in alternatives] == pytest.approx([v for _, v in ranked], abs=1e-5)
    if "stream" in kind:  # every response holds the entries so far, growing with the text
        sizes = [len(r.logprobs or ()) for r in responses]
        assert sizes == sorted(sizes) and len(set(sizes)) > 1
    assert last.additional_kwargs["logprobs"] == pytest.approx([distribution(t)[0][1] for t in tokens], abs=1e-5)


def test_llamaindex_logprobs_without_top_hold_the_token_itself(current_server: LocalServer) -> None:
    llm = SteerLM(model="megatron-deployable", url=current_server.grpc_url, profile=PROFILE, max_retries=0)
    done = llm.complete(USER, logprobs=True)
    assert [[p.token for p in position] for position in done.logprobs or ()] == [[t] for t in TOKENS]
    assert llm.complete(USER).logprobs is None
