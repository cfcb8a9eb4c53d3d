"""Native batching for `ChatSteerLM.batch` / `abatch`: one Triton request for many inputs.

LangChain runs a chat model's batch as one `invoke` per input, each with its own callbacks, run id,
cache lookup and error handling. To keep all of that exactly as it is, the batch first renders every
input and sends them in ONE core-client `batch` call; the completions are parked in a context variable
(copied into LangChain's worker threads and tasks), and each per-input `_generate` takes its own
completion instead of making a request. An input whose prompt was not prefetched (it failed to render,
or rendered differently) simply makes its own request. Prefetching is skipped when the calls would
stream (streaming=True, a streaming callback handler) or use a cache: those paths do not call
`_generate`, so a prefetched answer would be wasted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from langchain_core.callbacks import CallbackManager
from langchain_core.globals import get_llm_cache
from langchain_core.language_models import BaseChatModel
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import get_config_list

__all__ = ["Prefetched", "batchable", "prefetch_scope", "take_prefetched"]


class Prefetched:
    """Completions (or the exception of the batch request) by request key; each is taken once."""

    def __init__(self) -> None:
        self._items: dict[Hashable, list[Any]] = {}
        self._lock = threading.Lock()

    def add(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._items.setdefault(key, []).append(value)

    def take(self, key: Hashable) -> Any:
        with self._lock:
            values = self._items.get(key)
            return values.pop(0) if values else None


_SCOPE: ContextVar[Prefetched | None] = ContextVar("steerlm_prefetched", default=None)


@contextmanager
def prefetch_scope(items: Prefetched) -> Iterator[None]:
    token = _SCOPE.set(items)
    try:
        yield
    finally:
        _SCOPE.reset(token)


def take_prefetched(key: Hashable) -> Any:
    """The prefetched completion (or exception) for `key` in this batch, or None."""
    scope = _SCOPE.get()
    if scope is None:
        return None
    try:
        return scope.take(key)
    except TypeError:  # an unhashable client option: never prefetched
        return None


def batchable(model: BaseChatModel, inputs: Sequence[Any], config: RunnableConfig | Sequence[RunnableConfig] | None,
              kwargs: dict[str, Any], *, async_api: bool) -> bool:
    """True when every input of this batch will go through `_generate` / `_agenerate`."""
    if len(inputs) < 2:
        return False
    cache = model.cache
    if cache is not False and (cache is not None or get_llm_cache() is not None):
        return False
    should: Callable[..., bool] = model._should_stream  # the base class's own decision
    protocol: Callable[..., bool] = model._should_use_protocol_streaming
    for one in get_config_list(config, len(inputs)):
        manager = CallbackManager.configure(one.get("callbacks"), model.callbacks, model.verbose)
        if should(async_api=async_api, run_manager=manager, **kwargs) or protocol(
            async_api=async_api, run_manager=manager, **kwargs
        ):
            return False
    return True
