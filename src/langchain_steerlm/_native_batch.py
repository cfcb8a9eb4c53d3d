"""`ChatSteerLM.batch` / `abatch`: every input rendered once, ONE Triton request, a LangChain run per input.

The usual call — inputs sharing one config, ``return_exceptions=False`` — runs `run_batch`: what
LangChain's `BaseChatModel.generate` does for a list of conversations (one callback manager, one
``on_chat_model_start`` giving a run per input, ``on_llm_end`` / ``on_llm_error`` per run, message ids
from the run ids, the same invocation params, tags and metadata), with the inputs' replies taken from
one core-client `batch` call instead of a `_generate` per input. LangChain's per-input path keeps the
rest (a config per input, ``return_exceptions=True``, an input that fails to render): its runs take
their rows of the one request sent in the background (`langchain_steerlm._batch`). Caches, streaming
and the ``v1`` output format go through LangChain's own `generate` (see `_batch.batchable`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from langchain_core.callbacks import AsyncCallbackManager, CallbackManager
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models._utils import _filter_invocation_params_for_tracing
from langchain_core.language_models.chat_models import (
    _format_for_tracing,
    _format_ls_structured_output,
    _gen_info_and_msg_metadata,
    _generate_response_from_error,
)
from langchain_core.messages import AIMessage
from langchain_core.outputs import Generation, LLMResult
from langchain_core.runnables import RunnableConfig
from langchain_core.utils.utils import LC_ID_PREFIX

from langchain_steerlm import _run
from langchain_steerlm._batch import Plan, generate_args, one_run, plan_batch, prefetch_scope, ready, replies

if TYPE_CHECKING:
    from langchain_steerlm.chat_models import ChatSteerLM
    from steerlm.client import Completion

__all__ = ["abatch", "batch"]

Configs = RunnableConfig | Sequence[RunnableConfig] | None


def batch(model: ChatSteerLM, inputs: Sequence[Any], config: Configs, return_exceptions: bool,
          kwargs: dict[str, Any]) -> list[Any] | None:
    """The replies of a native batch, or None when LangChain's own `batch` should run."""
    plan = plan_batch(model, inputs, config, kwargs, async_api=False)
    sendable = ready(plan)
    if not sendable:
        return None
    runner = model
    if model.rate_limiter is not None:  # consulted BEFORE the request is sent: a permit per input
        for _ in sendable:
            model.rate_limiter.acquire(blocking=True)
        runner = model.model_copy(update={"rate_limiter": None})  # its permits were taken: none twice
    spec, prompts = sendable[0][1].spec, [p.prompt for _, p in sendable]
    if one_run(plan, config, return_exceptions) and len(sendable) == len(plan) and runner.output_version != "v1":
        return run_batch(runner, plan, config, kwargs, lambda: _run.batch(spec, prompts))
    with prefetch_scope(_run.prefetch(sendable, _run.send(spec, prompts))):
        if one_run(plan, config, return_exceptions):
            return replies(runner.generate([m for m, _ in plan], **generate_args(config, kwargs)))
        return BaseChatModel.batch(runner, inputs, config, return_exceptions=return_exceptions,  # type: ignore[arg-type]
                                   **kwargs)


async def abatch(model: ChatSteerLM, inputs: Sequence[Any], config: Configs, return_exceptions: bool,
                 kwargs: dict[str, Any]) -> list[Any] | None:
    """Async `batch`."""
    plan = plan_batch(model, inputs, config, kwargs, async_api=True)
    sendable = ready(plan)
    if not sendable:
        return None
    runner = model
    if model.rate_limiter is not None:
        for _ in sendable:
            await model.rate_limiter.aacquire(blocking=True)
        runner = model.model_copy(update={"rate_limiter": None})  # its permits were taken: none twice
    spec, prompts = sendable[0][1].spec, [p.prompt for _, p in sendable]
    if one_run(plan, config, return_exceptions) and len(sendable) == len(plan) and runner.output_version != "v1":
        return await arun_batch(runner, plan, config, kwargs, spec, prompts)
    with prefetch_scope(_run.prefetch(sendable, _run.asend(spec, prompts))):
        if one_run(plan, config, return_exceptions):
            return replies(await runner.agenerate([m for m, _ in plan], **generate_args(config, kwargs)))
        return await BaseChatModel.abatch(runner, inputs, config,  # type: ignore[arg-type]
                                          return_exceptions=return_exceptions, **kwargs)


def _start(model: ChatSteerLM, plan: Plan, config: Configs, kwargs: dict[str, Any], *,
           async_api: bool) -> tuple[Any, dict[str, Any]]:
    """The callback manager and the ``on_chat_model_start`` arguments, as `BaseChatModel.generate` makes them."""
    args = generate_args(config, kwargs)
    callbacks, tags, metadata, run_name = (args.pop(k) for k in ("callbacks", "tags", "metadata", "run_name"))
    stop = args.pop("stop", None)
    structured = args.pop("ls_structured_output_format", None) or args.pop("structured_output_format", None)
    params = model._get_invocation_params(stop=stop, **args)
    inheritable = {**(metadata or {}), **model._get_ls_params_with_defaults(stop=stop, **args)}
    configure = AsyncCallbackManager.configure if async_api else CallbackManager.configure
    manager = configure(callbacks, model.callbacks, model.verbose, tags, model.tags, inheritable, model.metadata,
                        langsmith_inheritable_metadata=_filter_invocation_params_for_tracing(params))
    start = {"invocation_params": params, "options": {"stop": stop, **_format_ls_structured_output(structured)},
             "name": run_name, "run_id": None, "batch_size": len(plan)}
    return manager, start


def _reply(model: ChatSteerLM, prepared: _run.Prepared, done: Completion, run_id: Any) -> tuple[AIMessage, LLMResult]:
    """One input's reply, finished as `_generate_with_cache` finishes it, and its run's result."""
    generation = model._generation(prepared, done)
    if generation.message.id is None:
        generation.message.id = f"{LC_ID_PREFIX}-{run_id}-0"
    generation.message.response_metadata = _gen_info_and_msg_metadata(generation)
    generations: list[Generation] = [generation]
    return cast(AIMessage, generation.message), LLMResult(generations=[generations])


def _failed(error: BaseException) -> LLMResult:
    generations: list[Generation] = list(_generate_response_from_error(error))
    return LLMResult(generations=[generations])


def run_batch(model: ChatSteerLM, plan: Plan, config: Configs, kwargs: dict[str, Any],
              send: Any) -> list[AIMessage]:
    """`BaseChatModel.generate` over the inputs of `plan` with their replies from ONE request (`send()`)."""
    manager, start = _start(model, plan, config, kwargs, async_api=False)
    runs = manager.on_chat_model_start(model._serialized, [_format_for_tracing(m) for m, _ in plan], **start)
    try:
        done: list[Completion] = send()
    except BaseException as exc:
        for run in runs:
            run.on_llm_error(exc, response=_failed(exc))
        raise
    out = []
    for run, (_, prepared), completion in zip(runs, plan, done, strict=True):
        message, result = _reply(model, prepared, completion, run.run_id)
        run.on_llm_end(result)
        out.append(message)
    return out


async def arun_batch(model: ChatSteerLM, plan: Plan, config: Configs, kwargs: dict[str, Any],
                     spec: Any, prompts: list[str]) -> list[AIMessage]:
    """Async `run_batch`."""
    manager, start = _start(model, plan, config, kwargs, async_api=True)
    runs = await manager.on_chat_model_start(model._serialized, [_format_for_tracing(m) for m, _ in plan], **start)
    try:
        done = await _run.abatch(spec, prompts)
    except BaseException as exc:
        for run in runs:
            await run.on_llm_error(exc, response=_failed(exc))
        raise
    out = []
    for run, (_, prepared), completion in zip(runs, plan, done, strict=True):
        message, result = _reply(model, prepared, completion, run.run_id)
        await run.on_llm_end(result)
        out.append(message)
    return out
