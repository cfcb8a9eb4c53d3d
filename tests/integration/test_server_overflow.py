"""A server's own "input too long" becomes the context-overflow error, so callers can shorten and retry.

The scripted model declares a context window of 4,096 tokens (whitespace-separated words) and refuses a
longer prompt like TensorRT-LLM ("Prompt length (N) exceeds maximum input length (4096)"); the NeMo
signature answers that in-band. No tokenizer is configured, so nothing is caught client side: the
error comes from the server. The retry below is what langchain's SummarizationMiddleware does on
`ContextOverflowError` (catch, shorten the conversation, call again).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain.agents.middleware import SummarizationMiddleware
from langchain_core.exceptions import ContextOverflowError
from langchain_core.messages import AIMessage, HumanMessage
from llama_index.core.base.llms.types import ChatMessage

from langchain_steerlm import ChatSteerLM
from llamaindex_steerlm import SteerLM
from steerlm.errors import ContextWindowExceededError
from steerlm_testing import LocalServer

MODEL = "Llama2-70B-SteerLM-Chat"
LONG = "word " * 5000


def shorten(text: str) -> str:
    return " ".join(text.split()[-100:])


@pytest.mark.parametrize("mode", ["invoke", "ainvoke", "stream"])
def test_langchain_overflow_is_context_overflow_error_and_a_shorter_retry_succeeds(server: LocalServer,
                                                                                  mode: str) -> None:
    model = ChatSteerLM(model=MODEL, url=server.grpc_url, max_tokens=8, max_retries=0)

    def call(text: str) -> Any:
        if mode == "ainvoke":
            return asyncio.run(model.ainvoke(text))
        if mode == "stream":
            return "".join(str(c.content) for c in model.stream(text))
        return model.invoke(text)

    try:
        call(LONG)
        raise AssertionError("the server accepted a prompt over its context window")
    except ContextOverflowError as exc:
        assert isinstance(exc, ContextWindowExceededError)
        assert "exceeds maximum input length (4096)" in str(exc) and "Shorten the conversation" in str(exc)
        answer = call(shorten(LONG))
    assert answer
    assert len(server.requests(MODEL)) == 2  # the refused request reached the server; nothing was retried


def test_summarization_middleware_retries_an_overflowing_summary_shorter(server: LocalServer) -> None:
    model = ChatSteerLM(model=MODEL, url=server.grpc_url, max_tokens=8, max_retries=0)
    middleware = SummarizationMiddleware(model, trigger=("messages", 4), keep=("messages", 1),
                                         trim_tokens_to_summarize=None)
    history: list[Any] = []
    for turn in range(6):
        history += [HumanMessage(f"question {turn} " + "word " * 900), AIMessage(f"answer {turn}")]
    history.append(HumanMessage("And now?"))
    update = middleware.before_model({"messages": history}, None)  # type: ignore[arg-type]
    assert update is not None
    prompts = [e["inputs"]["prompts"]["data"][0] for e in server.requests(MODEL)]
    assert len(prompts) == 2 and len(prompts[0].split()) > 4096 >= len(prompts[1].split())


@pytest.mark.parametrize("streaming", [False, True])
async def test_llamaindex_overflow_is_the_typed_error_and_a_shorter_retry_succeeds(server: LocalServer,
                                                                                  streaming: bool) -> None:
    llm = SteerLM(model=MODEL, url=server.grpc_url, max_tokens=8, max_retries=0)

    async def chat(text: str) -> str:
        messages = [ChatMessage(role="user", content=text)]
        if streaming:
            return "".join([r.delta or "" async for r in await llm.astream_chat(messages)])
        return str((await llm.achat(messages)).message.content)

    with pytest.raises(ContextWindowExceededError, match=r"exceeds maximum input length \(4096\)"):
        await chat(LONG)
    assert await chat(shorten(LONG))
