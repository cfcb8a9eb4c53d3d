"""One prepared request and the client calls of both adapters (the sync/async twins are a few lines).

`prepare` takes a resolved `CallSpec` and the rendered prompt, counts the prompt's tokens when a
tokenizer is configured and applies the context-window guard (raising LangChain's
`ContextOverflowError` twin) before anything is sent.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator, Sequence
from contextlib import aclosing, closing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.messages import BaseMessage
from langchain_core.messages.ai import UsageMetadata

from langchain_steerlm._batch import Prefetched, batch_running, messages_key, take_prefetched
from langchain_steerlm._client import async_client, sync_client
from langchain_steerlm._convert import reply_metadata, usage
from langchain_steerlm._errors import mapped_errors
from langchain_steerlm._params import CallSpec
from steerlm.tokens import TokenCounter, guard_prompt

if TYPE_CHECKING:  # the client modules load on the first call (transport, retry)
    from steerlm.client import Completion, StreamChunk

__all__ = ["Prepared", "abatch", "agenerate", "astream", "batch", "generate", "parked", "prefetch", "prepare",
           "stream"]


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
        return (self.spec.client, self.prompt, self.spec.params)

    def metadata(self, finish_reason: str) -> dict[str, Any]:
        return reply_metadata(self.spec.model, finish_reason, self.spec.profile, self.spec.attributes)

    def usage_for(self, text: str) -> UsageMetadata | None:
        return usage(self.prompt_tokens, None if self.counter is None else self.counter.count(text))


def prepare(spec: CallSpec, prompt: str, counter: TokenCounter | None, *, tools_offered: bool = False) -> Prepared:
    """Count and guard the prompt (ContextOverflowError before sending); errors come out mapped."""
    tokens = None
    if counter is not None:
        with mapped_errors():
            tokens = guard_prompt(counter, prompt, spec.params.max_tokens, spec.profile, model=spec.model)
    return Prepared(spec, prompt, tools_offered, counter, tokens)


def _prefetched(prepared: Prepared) -> Completion | None:
    found = take_prefetched(request=prepared.key) if batch_running() else None
    if found is None:
        return None
    done = found[1]
    if isinstance(done, BaseException):
        raise done
    return done  # type: ignore[no-any-return]


def parked(messages: Sequence[BaseMessage]) -> tuple[Prepared, Completion] | None:
    """A native batch's input, found by its message objects: rendered and sent already (errors raised)."""
    found = take_prefetched(messages=messages_key(messages)) if batch_running() else None
    if found is None:
        return None
    prepared, done = found
    if isinstance(done, BaseException):
        raise done
    return prepared, done


def generate(prepared: Prepared) -> Completion:
    with mapped_errors():
        found = _prefetched(prepared)
        return found or sync_client(prepared.spec.client).generate(prepared.prompt, prepared.spec.params)


async def agenerate(prepared: Prepared) -> Completion:
    with mapped_errors():
        found = _prefetched(prepared)
        if found is not None:
            return found
        client = await async_client(prepared.spec.client)
        return await client.generate(prepared.prompt, prepared.spec.params)


def stream(prepared: Prepared) -> Generator[StreamChunk, None, None]:
    """The core stream, errors mapped; closing it (early) closes the server stream."""
    with mapped_errors():
        client = sync_client(prepared.spec.client)
        with closing(client.stream(prepared.prompt, prepared.spec.params)) as pieces:
            yield from pieces


async def astream(prepared: Prepared) -> AsyncGenerator[StreamChunk, None]:
    """Async `stream`."""
    with mapped_errors():
        client = await async_client(prepared.spec.client)
        async with aclosing(client.stream(prepared.prompt, prepared.spec.params)) as pieces:
            async for piece in pieces:
                yield piece


def batch(spec: CallSpec, prompts: Sequence[str]) -> list[Completion]:
    """One batched request (split by the model's max_batch_size) for prompts of one call spec."""
    with mapped_errors():
        return sync_client(spec.client).batch(list(prompts), spec.params)


async def abatch(spec: CallSpec, prompts: Sequence[str]) -> list[Completion]:
    with mapped_errors():
        client = await async_client(spec.client)
        return await client.batch(list(prompts), spec.params)


def prefetch(plan: Sequence[tuple[Sequence[BaseMessage], Prepared]],
             results: Sequence[Completion] | BaseException) -> Prefetched:
    """Park a batch's requests with their completions (or its one error, for every input) for the runs."""
    scope = Prefetched()
    for index, (messages, item) in enumerate(plan):
        done = results if isinstance(results, BaseException) else results[index]
        scope.add(messages_key(messages), item.key, (item, done))
    return scope
