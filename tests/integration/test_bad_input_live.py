"""Bad input against a live server: a lone surrogate in a prompt or message is a PromptError saying what
to fix — from the core client (generate and stream, which plan after the readiness wait), both adapters
and the reward model — and nothing reaches the server. (The other bad inputs are refused before any I/O:
tests/unit/test_bad_inputs.py.)"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.messages import HumanMessage
from llama_index.core.llms import ChatMessage

from langchain_steerlm import ChatSteerLM, SteerLM
from llamaindex_steerlm import SteerLM as LlamaSteerLM
from steerlm import AsyncRewardModel, AsyncSteerLMClient, RewardModel, SteerLMClient, format_prompt
from steerlm.errors import PromptError
from steerlm_testing import LocalServer

pytestmark = pytest.mark.integration

BAD = "caf\udce9 au lait"  # bytes decoded with errors="surrogateescape" leave lone surrogates like this
CHAT = "Llama2-70B-SteerLM-Chat"
STREAMING = "Llama2-70B-SteerLM-Chat-streaming"


def _refused(call: Any) -> PromptError:
    with pytest.raises(PromptError, match="lone surrogate") as refused:
        result = call()
        if asyncio.iscoroutine(result):
            asyncio.run(result)
        elif hasattr(result, "__next__"):
            list(result)
    assert "errors='replace'" in str(refused.value)
    return refused.value


@pytest.mark.parametrize("model", [CHAT, STREAMING])
def test_core_client_generate_and_stream(server: LocalServer, model: str) -> None:
    prompt = format_prompt([{"role": "user", "content": BAD}], profile=CHAT)
    with SteerLMClient(model, server.grpc_url) as client:
        _refused(lambda: client.generate(prompt))
        _refused(lambda: client.stream(prompt))
        _refused(lambda: client.batch(["fine", prompt]))

    async def run() -> None:
        async with AsyncSteerLMClient(model, server.http_url) as aclient:
            for call in (lambda: aclient.generate(prompt), lambda: aclient.batch([prompt])):
                with pytest.raises(PromptError, match="lone surrogate"):
                    await call()
            with pytest.raises(PromptError, match="lone surrogate"):
                async for _ in aclient.stream(prompt):
                    pass

    asyncio.run(run())
    assert not [r for r in server.requests() if BAD in str(r)]


def test_adapters(server: LocalServer) -> None:
    chat = ChatSteerLM(model=CHAT, url=server.grpc_url)
    _refused(lambda: chat.invoke([HumanMessage(BAD)]))
    _refused(lambda: chat.stream(BAD))
    _refused(lambda: chat.ainvoke(BAD))
    _refused(lambda: SteerLM(model=STREAMING, profile=CHAT, url=server.grpc_url).stream(BAD))
    llm = LlamaSteerLM(model=CHAT, url=server.http_url)
    _refused(lambda: llm.complete(BAD))
    _refused(lambda: llm.stream_chat([ChatMessage(role="user", content=BAD)]))
    _refused(lambda: llm.achat([ChatMessage(role="user", content=BAD)]))


def test_reward_model(reward_server: LocalServer) -> None:
    conversation = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": BAD}]
    with RewardModel(url=reward_server.http_url) as model:
        _refused(lambda: model.score(conversation))
        assert len(model.score([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}])) == 1

    async def run() -> None:
        async with AsyncRewardModel(url=reward_server.http_url) as amodel:
            with pytest.raises(PromptError, match="lone surrogate"):
                await amodel.score_prompts([BAD])

    asyncio.run(run())
