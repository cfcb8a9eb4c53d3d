"""One prepared request and the client calls of both adapters (the sync/async twins are a few lines).

`prepare` takes a resolved `CallSpec` and the rendered prompt, counts the prompt's tokens when a
tokenizer is configured and applies the context-window guard (raising LangChain's
`ContextOverflowError` twin) before anything is sent. Usage comes from the server when it reports
token counts, else from the tokenizer.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import aclosing, closing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata

from langchain_steerlm._batch import Prefetched, batch_running, messages_key, take_prefetched
from langchain_steerlm._client import async_client, open_async_client, sync_client
from langchain_steerlm._convert import reply_metadata, usage
from langchain_steerlm._errors import mapped_errors
from langchain_steerlm._logprobs import chat_logprobs
from langchain_steerlm._params import CallSpec
from steerlm.logprobs import TokenLogprob
from steerlm.tokens import TokenCounter, guard_prompt
from steerlm.usage import TokenUsage

if TYPE_CHECKING:  # the client modules load on the first call (transport, retry)
    from steerlm.client import Completion, StreamChunk

_M = TypeVar("_M", bound=AIMessage)

__all__ = ["Prepared", "abatch", "agenerate", "asend", "astream", "async_result", "batch", "generate", "parked",
           "prefetch", "prepare", "send", "stream", "sync_result"]


@dataclass(frozen=True)
class Prepared:
    """One rendered request: the resolved call, the prompt, whether tools were offered, token counts."""

    spec: CallSpec
    prompt: str
    tools_offered: bool = False
    counter: TokenCounter | None = None
    prompt_tokens: int | None = None

    @property
    def key(self) -> tuple[Any, ...]:
        """Identifies the request in a batch's prefetched completions."""
        return (self.spec.client, self.spec.call, self.prompt, self.spec.params)

    def metadata(self, finish_reason: str, logprobs: Sequence[TokenLogprob] | None = None) -> dict[str, Any]:
        """``response_metadata``; ``logprobs`` in ChatOpenAI's shape when they were returned."""
        meta = reply_metadata(self.spec.model, finish_reason, self.spec.profile, self.spec.attributes)
        if logprobs is not None:
            meta["logprobs"] = chat_logprobs(logprobs)
        return meta

    def check_strict(self, message: _M) -> _M:
        """The message, once its tool calls match their tools' schemas when they were bound with
        ``strict=True`` (else SteerLMStructuredOutputError; `langchain_steerlm.tools.check_tool_calls`)."""
        if self.tools_offered and self.spec.extra.get("strict"):
            from langchain_steerlm.tools import check_tool_calls

            check_tool_calls(self.spec.extra, message)
        return message

    def usage_for(self, text: str, server: TokenUsage | None = None) -> UsageMetadata | None:
        """The server's counts when it reported them, else the tokenizer's (None without either)."""
        if server is not None:
            return usage(server.input_tokens, server.output_tokens)
        return usage(self.prompt_tokens, None if self.counter is None else self.counter.count(text))


def prepare(spec: CallSpec, prompt: str, counter: TokenCounter | None, *, tools_offered: bool = False) -> Prepared:
    """Count and guard the prompt (ContextOverflowError before sending); errors come out mapped."""
    tokens = None
    if counter is not None:
        with mapped_errors():
            tokens = guard_prompt(counter, prompt, spec.params.max_tokens, spec.profile, model=spec.model)
    return Prepared(spec=spec, prompt=prompt, tools_offered=tools_offered, counter=counter,
                    prompt_tokens=tokens)


Pending = Future[list["Completion"]] | asyncio.Future[list["Completion"]]
Parked = tuple[Prepared, Pending, int]  # an input's request, its batch's pending result, its row


def parked(messages: Sequence[BaseMessage]) -> Parked | None:
    """A native batch's input, found by its message objects: rendered and sent already (its result is
    `sync_result` / `async_result`); None outside a batch (no coroutine made per call)."""
    return take_prefetched(messages=messages_key(messages)) if batch_running() else None


def sync_result(found: Parked) -> tuple[Prepared, Completion]:
    """A parked request and its completion (waited for; the batch request's error is raised)."""
    prepared, pending, row = found
    if not isinstance(pending, Future):
        raise RuntimeError("an async batch's result was asked for from sync code")
    return prepared, pending.result()[row]  # raises the batch request's (mapped) error


async def async_result(found: Parked) -> tuple[Prepared, Completion]:
    """Async `sync_result`."""
    prepared, pending, row = found
    results = await asyncio.wrap_future(pending) if isinstance(pending, Future) else await pending
    return prepared, results[row]


def generate(prepared: Prepared) -> Completion:
    found = take_prefetched(request=prepared.key) if batch_running() else None
    if found is not None:  # an equal request of the running batch
        return sync_result(found)[1]
    with mapped_errors():
        return sync_client(prepared.spec.client).generate(prepared.prompt, prepared.spec.params,
                                                          options=prepared.spec.call)


async def agenerate(prepared: Prepared) -> Completion:
    found = take_prefetched(request=prepared.key) if batch_running() else None
    if found is not None:
        return (await async_result(found))[1]
    with mapped_errors():
        client = open_async_client(prepared.spec.client) or await async_client(prepared.spec.client)
        return await client.generate(prepared.prompt, prepared.spec.params, options=prepared.spec.call)


def stream(prepared: Prepared) -> Generator[StreamChunk, None, None]:
    """The core stream, errors mapped; closing it (early) closes the server stream."""
    with mapped_errors():
        client = sync_client(prepared.spec.client)
        with closing(client.stream(prepared.prompt, prepared.spec.params, options=prepared.spec.call)) as pieces:
            yield from pieces


async def astream(prepared: Prepared) -> AsyncGenerator[StreamChunk, None]:
    """Async `stream`."""
    with mapped_errors():
        client = open_async_client(prepared.spec.client) or await async_client(prepared.spec.client)
        async with aclosing(client.stream(prepared.prompt, prepared.spec.params, options=prepared.spec.call)) as pieces:
            async for piece in pieces:
                yield piece


def batch(spec: CallSpec, prompts: Sequence[str]) -> list[Completion]:
    """One batched request (split by the model's max_batch_size) for prompts of one call spec."""
    with mapped_errors():
        return sync_client(spec.client).batch(list(prompts), spec.params, options=spec.call)


async def abatch(spec: CallSpec, prompts: Sequence[str]) -> list[Completion]:
    with mapped_errors():
        client = await async_client(spec.client)
        return await client.batch(list(prompts), spec.params, options=spec.call)


def send(spec: CallSpec, prompts: Sequence[str]) -> Future[list[Completion]]:
    """`batch` in the background: the runs' callbacks start while the request is on its way."""
    global _SENDER
    with _SENDER_LOCK:
        if _SENDER is None:
            _SENDER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="steerlm-batch")
    return _SENDER.submit(batch, spec, list(prompts))


def asend(spec: CallSpec, prompts: Sequence[str]) -> asyncio.Future[list[Completion]]:
    """`abatch` as a task on the running loop."""
    return asyncio.ensure_future(abatch(spec, prompts))


_SENDER: ThreadPoolExecutor | None = None
_SENDER_LOCK = threading.Lock()


def prefetch(plan: Sequence[tuple[Sequence[BaseMessage], Prepared]], pending: Pending) -> Prefetched:
    """Park every input's request with its batch's pending result (and its row in it) for the runs."""
    scope = Prefetched()
    for row, (messages, item) in enumerate(plan):
        scope.add(messages_key(messages), item.key, (item, pending, row))
    return scope
