"""Native batching for `ChatSteerLM.batch` / `abatch`: one plan, one render per input, one Triton request.

`ChatSteerLM.batch` converts and renders every input once (`plan`), sends the prompts in ONE core-client
`batch` call (split only by the model's max batch size) on a background thread (`abatch`: a task), and
parks each input's rendered request with that pending result in a `Prefetched` scope. Meanwhile the
inputs go through LangChain's own run machinery, so callbacks, run ids, tags and metadata stay per
input, and each run waits for its row (or the batch's error):

* inputs sharing one config (the usual ``model.batch(inputs)``) and ``return_exceptions=False``: ONE
  ``generate`` call over all the message lists — a run per input, no per-input thread pool; each
  `_generate` finds its input's parked request by the identity of its message objects and renders
  nothing again;
* otherwise LangChain's per-input path runs as it is; each `_generate` renders its input and takes the
  parked completion of an equal request (client, prompt, parameters).

Nothing is parked when the calls would stream (streaming=True, a streaming callback handler) or use a
cache: those paths do not call `_generate`. An input that fails to render simply fails in its own run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, cast

from langchain_core.callbacks import CallbackManager
from langchain_core.globals import get_llm_cache
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.runnables import RunnableConfig, ensure_config
from langchain_core.runnables.config import get_config_list

from langchain_steerlm._guards import InputGuards

__all__ = ["Prefetched", "batch_running", "batchable", "generate_args", "messages_key", "one_run", "plan_batch",
           "prefetch_scope", "ready", "replies", "shared_config", "take_prefetched"]

Plan = list[tuple[list[BaseMessage], Any]]  # per input: its messages and its Prepared request (None: failed)
Configs = RunnableConfig | Sequence[RunnableConfig] | None


def messages_key(messages: Sequence[BaseMessage]) -> tuple[int, ...]:
    """Identifies one input's message list by its message objects (LangChain passes them unchanged)."""
    return tuple(map(id, messages))


@dataclass
class _Entry:
    value: Any
    taken: bool = field(default=False)


class Prefetched:
    """Parked results of one batch, by message identity and by request key; each is taken once."""

    def __init__(self) -> None:
        self._by_messages: dict[Hashable, list[_Entry]] = {}
        self._by_request: dict[Hashable, list[_Entry]] = {}
        self._lock = threading.Lock()

    def add(self, messages: Hashable, request: Hashable, value: Any) -> None:
        entry = _Entry(value)
        with self._lock:
            self._by_messages.setdefault(messages, []).append(entry)
            self._by_request.setdefault(request, []).append(entry)

    def take(self, *, messages: Hashable | None = None, request: Hashable | None = None) -> Any:
        with self._lock:
            for table, key in ((self._by_messages, messages), (self._by_request, request)):
                entries = table.get(key) if key is not None else None
                while entries:
                    entry = entries.pop(0)
                    if not entry.taken:
                        entry.taken = True
                        return entry.value
        return None


_SCOPE: ContextVar[Prefetched | None] = ContextVar("steerlm_prefetched", default=None)


@contextmanager
def prefetch_scope(items: Prefetched) -> Iterator[None]:
    token = _SCOPE.set(items)
    try:
        yield
    finally:
        _SCOPE.reset(token)


def batch_running() -> bool:
    """True inside a native batch (its parked results are looked up)."""
    return _SCOPE.get() is not None


def take_prefetched(*, messages: Hashable | None = None, request: Hashable | None = None) -> Any:
    """The parked value for this input of the running batch (by messages or by request), or None."""
    scope = _SCOPE.get()
    if scope is None:
        return None
    try:
        return scope.take(messages=messages, request=request)
    except TypeError:  # an unhashable client option: never parked
        return None


def shared_config(config: Configs) -> bool:
    """True when every input runs with the same config (one `generate` call can carry them all)."""
    if isinstance(config, Sequence) and not isinstance(config, dict):
        return False
    return config is None or config.get("run_id") is None


def batchable(model: BaseChatModel, inputs: Sequence[Any], config: Configs, kwargs: dict[str, Any], *,
              async_api: bool) -> bool:
    """True when every input of this batch will go through `_generate` / `_agenerate`."""
    if len(inputs) < 2:
        return False
    cache = model.cache
    if cache is not False and (cache is not None or get_llm_cache() is not None):
        return False
    should: Callable[..., bool] = model._should_stream  # the base class's own decision
    protocol: Callable[..., bool] = model._should_use_protocol_streaming
    configs = get_config_list(config, len(inputs))
    for one in configs[:1] if shared_config(config) else configs:
        manager = CallbackManager.configure(one.get("callbacks"), model.callbacks, model.verbose)
        if should(async_api=async_api, run_manager=manager, **kwargs) or protocol(
            async_api=async_api, run_manager=manager, **kwargs
        ):
            return False
    return True


def plan_batch(model: Any, inputs: Sequence[Any], config: Configs, kwargs: dict[str, Any], *,
               async_api: bool) -> Plan:
    """Every input converted and rendered once (`model._prepare`; None where rendering failed, so that
    input fails in its own run). Empty: LangChain's own path (not batchable, or an input that does not
    convert)."""
    if not batchable(model, inputs, config, kwargs, async_api=async_api):
        return []
    plan: Plan = []
    try:  # the call is resolved once for every input (an error: each input fails in its own run)
        spec = model._resolve(None, kwargs)
    except Exception:
        spec = None
    fast = type(model)._convert_input is InputGuards._convert_input  # LangChain's conversion, not an override
    for item in inputs:
        try:
            messages = (fast and _plain_messages(item)) or model._convert_input(item).to_messages()
        except Exception:
            return []
        try:
            plan.append((messages, model._prepare(messages, None, dict(kwargs), spec)))
        except Exception:
            plan.append((messages, None))
    return plan


_PLAIN_ROLES: dict[str, type[BaseMessage]] = {"human": HumanMessage, "user": HumanMessage, "ai": AIMessage,
                                               "assistant": AIMessage, "system": SystemMessage}


def _plain_messages(item: Any) -> list[BaseMessage] | None:
    """The messages LangChain's input conversion makes of a string or of ``(role, text)`` pairs with the
    plain roles (a message of that class with that content), made directly; None for anything else."""
    if type(item) is str:
        return [HumanMessage(content=item)]
    if type(item) is not list or not item:
        return None
    out: list[BaseMessage] = []
    for pair in item:
        kind = _PLAIN_ROLES.get(pair[0]) if type(pair) is tuple and len(pair) == 2 and type(pair[1]) is str else None
        if kind is None:
            return None
        out.append(kind(content=pair[1]))
    return out


def ready(plan: Plan) -> Plan:
    """The rendered inputs that go out in one core `batch` call (all with the first one's call spec)."""
    rendered = [(m, p) for m, p in plan if p is not None]
    return [(m, p) for m, p in rendered if p.spec == rendered[0][1].spec] if len(rendered) > 1 else []


def one_run(plan: Plan, config: Configs, return_exceptions: bool) -> bool:
    """Whether one `generate` call can carry every input (shared config, every input rendered)."""
    return not return_exceptions and shared_config(config) and all(p is not None for _, p in plan)


def generate_args(config: Configs, kwargs: dict[str, Any]) -> dict[str, Any]:
    """`generate` keyword arguments for inputs sharing `config` (what `invoke` passes for one input)."""
    one = ensure_config(config if isinstance(config, dict) else None)
    return {"callbacks": one.get("callbacks"), "tags": one.get("tags"), "metadata": one.get("metadata"),
            "run_name": one.get("run_name"), **kwargs}


def replies(result: LLMResult) -> list[AIMessage]:
    """The AIMessage of each input of a `generate` result."""
    return [cast(ChatGeneration, generations[0]).message for generations in result.generations]  # type: ignore[misc]
