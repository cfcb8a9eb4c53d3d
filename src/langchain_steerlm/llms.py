"""`SteerLM`: a LangChain string LLM (text in, text out) for SteerLM / NeMo-aligned models on Triton."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import aclosing, closing
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseLLM, LangSmithParams, LanguageModelInput
from langchain_core.outputs import Generation, GenerationChunk, LLMResult
from langchain_core.runnables import RunnableConfig
from pydantic import ConfigDict, Field

from langchain_steerlm import _run
from langchain_steerlm._guards import InputGuards
from langchain_steerlm._logprobs import chunk_logprobs, completion_logprobs
from langchain_steerlm._params import ATTRIBUTES_KEY, SteerLMFields
from steerlm.client import Completion, StreamChunk
from steerlm.errors import ConfigurationError
from steerlm.logprobs import TokenLogprob
from steerlm.prompts import Message, render
from steerlm.secrets import hide_secrets
from steerlm.usage import TokenUsage

__all__ = ["SteerLM"]

_LLM_KWARGS = frozenset({"raw_prompt"})


class SteerLM(InputGuards, SteerLMFields, BaseLLM):
    """NVIDIA SteerLM and NeMo-aligned models on Triton as a LangChain string LLM.

    The prompt becomes the one user turn of the profile's template (system text, label line and all),
    so plain-text chains get the model's real format; with ``raw_prompt=True`` an already formatted
    prompt (for example from `steerlm.format_prompt`) is sent verbatim. Fields, steering, per-call
    options, errors and usage are those of `ChatSteerLM`.

    Setup:
        ```bash
        pip install "steerlm[langchain]"
        ```

    Instantiate:
        ```python
        from langchain_steerlm import SteerLM

        llm = SteerLM(model="Llama2-70B-SteerLM-Chat", url="grpc://localhost:8001", verbosity=1)
        ```

    Invoke:
        ```python
        llm.invoke("Name three rivers.")
        llm.invoke("Name three rivers.", verbosity=4)  # per call
        llm.invoke("What is served?", context="Triton serves models.")  # closed QA
        llm.invoke(steerlm.format_prompt([...], profile="Llama2-70B-SteerLM-Chat"), raw_prompt=True)
        ```

    Stream:
        ```python
        for text in llm.stream("Name three rivers."):
            print(text, end="")
        ```

    Async:
        ```python
        await llm.ainvoke("Name three rivers.")
        async for text in llm.astream("Name three rivers."):
            print(text, end="")
        ```

    Batch:
        ```python
        llm.batch(["Hi", "Hello"])  # one Triton request
        ```
    """

    # The field mixins defer their schemas (never validated on their own); this model builds its own now.
    model_config = ConfigDict(defer_build=False)

    raw_prompt: bool = Field(default=False, description="Send prompts verbatim (already formatted).")

    @property
    def _llm_type(self) -> str:
        return "steerlm"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {**self.identifying(), "raw_prompt": self.raw_prompt}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return self.ls_params(stop, kwargs, "llm")

    # BaseLLM.stream/astream put the per-call kwargs into the callbacks' ``invocation_params`` as they are:
    # wrap api_key / headers so that no handler (or LangSmith) sees a secret.
    def stream(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
               stop: list[str] | None = None, **kwargs: Any) -> Iterator[str]:
        return super().stream(input, config, stop=stop, **hide_secrets(kwargs))

    def astream(self, input: LanguageModelInput, config: RunnableConfig | None = None, *,
                stop: list[str] | None = None, **kwargs: Any) -> AsyncIterator[str]:
        return super().astream(input, config, stop=stop, **hide_secrets(kwargs))

    def get_token_ids(self, text: str) -> list[int]:
        """Token ids from `tokenizer=` when configured (else LangChain's GPT-2 approximation)."""
        counter = self.token_counter
        return super().get_token_ids(text) if counter is None else counter.ids(text)

    def _prepare(self, text: str, stop: list[str] | None, kwargs: dict[str, Any]) -> _run.Prepared:
        spec = self.resolve_call(stop, kwargs, extra_names=_LLM_KWARGS)
        raw = bool(spec.extra.get("raw_prompt", self.raw_prompt))
        if raw and spec.context is not None:
            raise ConfigurationError("context= needs the template; it cannot be used with raw_prompt=True")
        prompt = text if raw else render(spec.profile, [Message("user", text)], spec.attributes, context=spec.context)
        return _run.prepare(spec, prompt, self.token_counter)

    def _info(self, prepared: _run.Prepared, finish_reason: str, text: str, server: TokenUsage | None = None,
              logprobs: Sequence[TokenLogprob] | None = None) -> dict[str, Any]:
        info = prepared.metadata(finish_reason)
        if logprobs is not None:
            info["logprobs"] = completion_logprobs(logprobs)
        if self._is_raw(prepared):
            info.pop(ATTRIBUTES_KEY, None)  # a verbatim prompt carries its own labels
        used = prepared.usage_for(text, server)
        if used is not None:
            info["usage_metadata"] = dict(used)
        return info

    def _is_raw(self, prepared: _run.Prepared) -> bool:
        return bool(prepared.spec.extra.get("raw_prompt", self.raw_prompt))

    def _result(self, prepared: list[_run.Prepared], done: list[Completion]) -> LLMResult:
        generations = [[Generation(text=c.text, generation_info=self._info(p, c.finish_reason, c.text, c.usage,
                                                                           c.logprobs))]
                       for p, c in zip(prepared, done, strict=True)]
        llm_output: dict[str, Any] = {"model_name": prepared[0].spec.model}
        usages = [g[0].generation_info.get("usage_metadata") for g in generations if g[0].generation_info]
        if usages and all(usages):
            llm_output["token_usage"] = {key: sum(u[key] for u in usages if u)
                                         for key in ("input_tokens", "output_tokens", "total_tokens")}
        return LLMResult(generations=generations, llm_output=llm_output)

    def _generate(self, prompts: list[str], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> LLMResult:
        prepared = [self._prepare(p, stop, dict(kwargs)) for p in prompts]
        if self.streaming and len(prompts) == 1:
            chunks = list(self._stream(prompts[0], stop, run_manager, **kwargs))
            return self._result(prepared, [_joined(prepared[0], chunks)])
        done = [_run.generate(prepared[0])] if len(prepared) == 1 else _run.batch(
            prepared[0].spec, [p.prompt for p in prepared])
        return self._result(prepared, done)

    async def _agenerate(self, prompts: list[str], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> LLMResult:
        prepared = [self._prepare(p, stop, dict(kwargs)) for p in prompts]
        if self.streaming and len(prompts) == 1:
            chunks = [c async for c in self._astream(prompts[0], stop, run_manager, **kwargs)]
            return self._result(prepared, [_joined(prepared[0], chunks)])
        done = [await _run.agenerate(prepared[0])] if len(prepared) == 1 else await _run.abatch(
            prepared[0].spec, [p.prompt for p in prepared])
        return self._result(prepared, done)

    def _chunk(self, prepared: _run.Prepared, text: str, piece: StreamChunk) -> GenerationChunk:
        if piece.finish_reason is None:  # log-probabilities ride on the chunk they arrived with
            info = None if piece.logprobs is None else {"logprobs": completion_logprobs(piece.logprobs)}
            return GenerationChunk(text=piece.text, generation_info=info)
        return GenerationChunk(text=piece.text, generation_info=self._info(prepared, piece.finish_reason, text,
                                                                           piece.usage, piece.logprobs))

    def _stream(self, prompt: str, stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[GenerationChunk]:
        prepared = self._prepare(prompt, stop, kwargs)
        text = ""
        with closing(_run.stream(prepared)) as pieces:
            for piece in pieces:
                text += piece.text
                chunk = self._chunk(prepared, text, piece)
                if run_manager is not None:
                    run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk

    async def _astream(self, prompt: str, stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[GenerationChunk]:
        prepared = self._prepare(prompt, stop, kwargs)
        text = ""
        async with aclosing(_run.astream(prepared)) as pieces:
            async for piece in pieces:
                text += piece.text
                chunk = self._chunk(prepared, text, piece)
                if run_manager is not None:
                    await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk


def _joined(prepared: _run.Prepared, chunks: list[GenerationChunk]) -> Completion:
    """A streamed reply as one Completion (for invoke with ``streaming=True``)."""
    info = (chunks[-1].generation_info or {}) if chunks else {}
    used = info.get("usage_metadata")
    server = TokenUsage(used["input_tokens"], used["output_tokens"]) if used else None
    entries = [e for c in chunks for e in chunk_logprobs(c.generation_info)]
    return Completion("".join(c.text for c in chunks), info.get("finish_reason", "stop"), prepared.spec.model,
                      prepared.prompt, server, tuple(entries) if entries else None)
