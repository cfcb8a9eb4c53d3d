"""The stream loops of the LlamaIndex `SteerLM` (sync and async twins over the core client's stream)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from contextlib import aclosing, closing
from typing import TYPE_CHECKING

from llama_index.core.base.llms.types import ChatResponseAsyncGen, ChatResponseGen

from llamaindex_steerlm._convert import ChatStream, PreparedRequest

if TYPE_CHECKING:
    from steerlm.client import AsyncSteerLMClient, SteerLMClient, StreamChunk

__all__ = ["achat_stream", "atexts", "chat_stream", "texts"]


def texts(client: SteerLMClient, request: PreparedRequest) -> Generator[tuple[str, StreamChunk], None, None]:
    """``(text so far, chunk)`` per chunk of the core stream; closing it early closes the server stream."""
    text = ""
    with closing(client.stream(request.prompt, request.options.params)) as chunks:
        for chunk in chunks:
            text += chunk.text
            yield text, chunk


async def atexts(client: AsyncSteerLMClient,
                  request: PreparedRequest) -> AsyncGenerator[tuple[str, StreamChunk], None]:
    """Async `texts`."""
    text = ""
    async with aclosing(client.stream(request.prompt, request.options.params)) as chunks:
        async for chunk in chunks:
            text += chunk.text
            yield text, chunk


def chat_stream(client: SteerLMClient, request: PreparedRequest) -> ChatResponseGen:
    """Chat responses of a stream (tool protocol text held back, see `ChatStream`)."""
    state = ChatStream(request)
    for _, chunk in texts(client, request):
        response = state.response(chunk)
        if response is not None:
            yield response
    if not state.done:
        yield state.finish()


async def achat_stream(client: AsyncSteerLMClient, request: PreparedRequest) -> ChatResponseAsyncGen:
    """Async `chat_stream`."""
    state = ChatStream(request)
    async with aclosing(atexts(client, request)) as pieces:
        async for _, chunk in pieces:
            response = state.response(chunk)
            if response is not None:
                yield response
    if not state.done:
        yield state.finish()
