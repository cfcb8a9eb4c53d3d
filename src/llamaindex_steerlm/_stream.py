"""The streamed responses of `SteerLM` (sync and async twins): core stream chunks -> LlamaIndex responses.

Each response's ``text`` is the reply so far and ``delta`` the new part; ``logprobs``, when asked for, holds
every entry so far (so the last response has them all). Chat streams hold the tool protocol back
(`llamaindex_steerlm._convert.ChatStream`).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from contextlib import aclosing, closing
from typing import TYPE_CHECKING

from llama_index.core.base.llms.types import (
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
)

from llamaindex_steerlm._convert import ChatStream, LogprobsSoFar, PreparedRequest, completion_response

if TYPE_CHECKING:
    from steerlm.client import AsyncSteerLMClient, SteerLMClient, StreamChunk

__all__ = ["achat_stream", "acomplete_stream", "chat_stream", "complete_stream"]


def _texts(client: SteerLMClient, request: PreparedRequest) -> Generator[tuple[str, StreamChunk], None, None]:
    """``(text so far, chunk)`` per chunk of the core stream; closing it early closes the server stream."""
    text = ""
    with closing(client.stream(request.prompt, request.options.params)) as chunks:
        for chunk in chunks:
            text += chunk.text
            yield text, chunk


async def _atexts(client: AsyncSteerLMClient,
                  request: PreparedRequest) -> AsyncGenerator[tuple[str, StreamChunk], None]:
    """Async `_texts`."""
    text = ""
    async with aclosing(client.stream(request.prompt, request.options.params)) as chunks:
        async for chunk in chunks:
            text += chunk.text
            yield text, chunk


def chat_stream(client: SteerLMClient, request: PreparedRequest) -> ChatResponseGen:
    """Chat responses of a stream (tool protocol text held back, see `ChatStream`)."""
    state = ChatStream(request)
    for _, chunk in _texts(client, request):
        response = state.response(chunk)
        if response is not None:
            yield response
    if not state.done:
        yield state.finish()


async def achat_stream(client: AsyncSteerLMClient, request: PreparedRequest) -> ChatResponseAsyncGen:
    """Async `chat_stream`."""
    state = ChatStream(request)
    async with aclosing(_atexts(client, request)) as pieces:
        async for _, chunk in pieces:
            response = state.response(chunk)
            if response is not None:
                yield response
    if not state.done:
        yield state.finish()


def _collected(so_far: LogprobsSoFar | None, chunk: StreamChunk) -> LogprobsSoFar | None:
    return so_far if chunk.logprobs is None else (so_far or LogprobsSoFar()).add(chunk.logprobs)


def complete_stream(client: SteerLMClient, request: PreparedRequest) -> CompletionResponseGen:
    """Completion responses of a stream."""
    logprobs: LogprobsSoFar | None = None
    for text, chunk in _texts(client, request):
        logprobs = _collected(logprobs, chunk)
        yield completion_response(request, text, chunk.finish_reason, chunk.text, usage=chunk.usage,
                                  logprobs=logprobs)


async def acomplete_stream(client: AsyncSteerLMClient, request: PreparedRequest) -> CompletionResponseAsyncGen:
    """Async `complete_stream`."""
    logprobs: LogprobsSoFar | None = None
    async with aclosing(_atexts(client, request)) as pieces:
        async for text, chunk in pieces:
            logprobs = _collected(logprobs, chunk)
            yield completion_response(request, text, chunk.finish_reason, chunk.text, usage=chunk.usage,
                                      logprobs=logprobs)
