"""`ChatSteerLM`: a LangChain chat model for NVIDIA SteerLM / NeMo-aligned models served by Triton."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import aclosing, closing
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams, LanguageModelInput
from langchain_core.language_models.model_profile import ModelProfile as LCModelProfile
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import BaseModel, ConfigDict

from langchain_steerlm import _run
from langchain_steerlm._convert import StreamState, ai_message, capability_profile, to_core_messages
from langchain_steerlm._guards import InputGuards
from langchain_steerlm._params import CallSpec, SteerLMFields
from steerlm.errors import ConfigurationError
from steerlm.prompts import render
from steerlm.secrets import redact_params, shows_secrets

if TYPE_CHECKING:
    from langchain_steerlm.tools import ToolLike
    from steerlm.client import Completion

__all__ = ["ChatSteerLM"]

_TOOL_KWARGS = frozenset({"tools", "tool_choice", "strict"})
Inputs = Sequence[LanguageModelInput]
Configs = RunnableConfig | list[RunnableConfig] | None


class ChatSteerLM(InputGuards, SteerLMFields, BaseChatModel):
    """NVIDIA SteerLM and NeMo-aligned chat models served by Triton Inference Server.

    Renders each model's own byte-exact prompt template — with the SteerLM attribute label line
    (``<extra_id_2>quality:4,...,verbosity:1``) — and talks to Triton over gRPC or HTTP through the
    steerlm client (timeouts, retries with backoff, TLS, headers, load-balanced replicas with failover,
    native batching).

    Setup:
        Install the package with its LangChain extra and point it at a Triton server that serves the
        model (NeMo deploy signature; for a quick try, `steerlm serve` starts a scripted local one).

        ```bash
        pip install "steerlm[langchain]"
        steerlm serve --grpc-port 8001
        ```

    Key init args — completion params:
        max_tokens, temperature, top_k, top_p, seed, repetition_penalty, stop.

    Key init args — steering (None keeps the profile's default):
        quality, toxicity, humor, creativity, helpfulness, correctness, coherence, complexity,
        verbosity (HelpSteer, 0–4), violence, not_appropriate (OASST, 0–9), attributes (a dict).

    Key init args — client params:
        model (Triton model name, or the served model id on an OpenAI-compatible server), url
        (`grpc://`, `http://`, `https://`, `grpcs://`; a bare `host:port` means gRPC;
        `openai+http://host:8000/v1` for vLLM, trtllm-serve, NIM and other OpenAI-compatible servers),
        profile (prompt profile; defaults to `model`), timeout, max_retries,
        headers, api_key (sent as `authorization: Bearer`), verify_ssl, root_certificates, tokenizer
        (local tokenizer.json: usage metadata and a context-window guard), streaming.

    Every init arg can also be given per call (`invoke(..., verbosity=0)`) or bound (`.bind(...)`).

    Instantiate:
        ```python
        from langchain_steerlm import ChatSteerLM

        model = ChatSteerLM(
            model="Llama2-70B-SteerLM-Chat",
            url="grpc://localhost:8001",
            verbosity=1,
            max_tokens=256,
        )
        ```

    Invoke:
        ```python
        messages = [("system", "You answer briefly."), ("human", "What is Triton?")]
        model.invoke(messages)
        model.invoke(messages, verbosity=4, creativity=2)  # steer one call
        model.invoke("What does it say?", context="Triton serves models.")  # closed QA
        ```

    Stream:
        ```python
        for chunk in model.stream(messages):
            print(chunk.text, end="")
        ```

    Async:
        ```python
        await model.ainvoke(messages)
        async for chunk in model.astream(messages):
            print(chunk.text, end="")
        await model.abatch([messages, messages])
        ```

    Batch:
        ```python
        model.batch(["Hi", "Hello"])  # one Triton request for both inputs
        ```

    Tool calling:
        ```python
        def get_weather(city: str) -> str:
            "Get the weather in a city."
            ...

        model.bind_tools([get_weather]).invoke("Weather in Paris?").tool_calls
        ```

    Structured output:
        ```python
        from pydantic import BaseModel

        class Answer(BaseModel):
            answer: str

        model.with_structured_output(Answer).invoke("What is Triton?")
        ```

    Response metadata:
        ```python
        reply = model.invoke("Hi")
        reply.response_metadata
        # {"model_name": "Llama2-70B-SteerLM-Chat", "finish_reason": "stop",
        #  "model_provider": "steerlm", "steerlm_profile": "Llama2-70B-SteerLM-Chat",
        #  "steerlm_attributes": {"quality": 4, ..., "verbosity": 1}}
        ```

    Token usage (with `tokenizer="path/to/tokenizer.json"`):
        ```python
        reply.usage_metadata  # {"input_tokens": 61, "output_tokens": 12, "total_tokens": 73}
        ```
    """

    # The field mixins defer their schemas (never validated on their own); this model builds its own now.
    model_config = ConfigDict(defer_build=False)

    @classmethod
    def is_lc_serializable(cls) -> bool:
        """Serializable with `langchain_core.load.dumpd` (secrets as ``STEERLM_API_KEY`` / ``STEERLM_CLIENT_KEY``
        references, never their values)."""
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        return ["langchain_steerlm", "chat_models"]

    @property
    def _llm_type(self) -> str:
        return "steerlm-chat"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return self.identifying()

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        return self.ls_params(stop, kwargs, "chat")

    def _get_invocation_params(self, stop: list[str] | None = None, **kwargs: Any) -> dict[str, Any]:
        """What callback handlers see as ``invocation_params``: secrets (api_key, credential headers) redacted."""
        params = super()._get_invocation_params(stop, **kwargs)  # a new dict: redacted only when it must be
        return redact_params(params) if shows_secrets(params) else params

    def _resolve_model_profile(self) -> LCModelProfile | None:
        """LangChain's capability profile, derived from the steerlm profile."""
        return capability_profile(self.resolved_profile)

    def get_token_ids(self, text: str) -> list[int]:
        """Token ids from `tokenizer=` when configured (else LangChain's GPT-2 approximation)."""
        counter = self.token_counter
        return super().get_token_ids(text) if counter is None else counter.ids(text)

    def _resolve(self, stop: list[str] | None, kwargs: dict[str, Any]) -> CallSpec:
        return self.resolve_call(stop, kwargs, extra_names=_TOOL_KWARGS)

    def _prepare(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict[str, Any],
                 spec: CallSpec | None = None) -> _run.Prepared:
        """Convert, render and guard one input; `spec`: the call already resolved (a batch's inputs share it)."""
        spec = spec if spec is not None else self._resolve(stop, kwargs)
        turns, offered = to_core_messages(messages, spec.profile), False
        if spec.extra or spec.params.guided_json is not None:  # tools, or structured output
            from langchain_steerlm.tools import structured_turns

            turns, offered, params = structured_turns(turns, spec.extra, spec.params, spec.profile)
            spec = replace(spec, params=params)
        prompt = render(spec.profile, turns, spec.attributes, context=spec.context)
        return _run.prepare(spec, prompt, self.token_counter, tools_offered=offered)

    @staticmethod
    def _generation(prepared: _run.Prepared, done: Completion) -> ChatGeneration:
        message = ai_message(done.text, prepared.metadata(done.finish_reason, done.logprobs),
                             prepared.usage_for(done.text, done.usage), tools_offered=prepared.tools_offered)
        return ChatGeneration(message=prepared.check_strict(message))

    @classmethod
    def _result(cls, prepared: _run.Prepared, done: Completion) -> ChatResult:
        return ChatResult(generations=[cls._generation(prepared, done)])

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        found = _run.parked(messages)  # an input of a native batch: rendered and sent already
        if found is not None:
            return self._result(*_run.sync_result(found))
        prepared = self._prepare(messages, stop, kwargs)
        return self._result(prepared, _run.generate(prepared))

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        found = _run.parked(messages)
        if found is not None:
            return self._result(*await _run.async_result(found))
        prepared = self._prepare(messages, stop, kwargs)
        done = await _run.agenerate(prepared)  # awaited first: nothing else is held while the request runs
        return self._result(prepared, done)

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        state = StreamState(self._prepare(messages, stop, kwargs))
        with closing(_run.stream(state.prepared)) as pieces:  # stopping early cancels the server stream
            for piece in pieces:
                chunk = state.feed(piece)
                if chunk is not None:
                    if run_manager is not None:
                        run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
        if not state.done:
            yield state.finish()

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: AsyncCallbackManagerForLLMRun | None = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        state = StreamState(self._prepare(messages, stop, kwargs))
        async with aclosing(_run.astream(state.prepared)) as pieces:
            async for piece in pieces:
                chunk = state.feed(piece)
                if chunk is not None:
                    if run_manager is not None:
                        await run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                    yield chunk
        if not state.done:
            yield state.finish()

    # ------------------------------------------------------------------ native batching (see _native_batch.py)

    def batch(self, inputs: Inputs, config: Configs = None, *, return_exceptions: bool = False,  # type: ignore[override]
              **kwargs: Any) -> list[AIMessage]:
        """Batch over inputs: ONE Triton request for all of them (split by the model's max batch size).

        Each input is rendered once and keeps its own LangChain run (callbacks, run id, tags,
        metadata); see `langchain_steerlm._native_batch`.
        """
        from langchain_steerlm import _native_batch

        out = _native_batch.batch(self, inputs, config, return_exceptions, kwargs)
        if out is None:
            return super().batch(inputs, config, return_exceptions=return_exceptions, **kwargs)  # type: ignore[arg-type,return-value]
        return out

    async def abatch(self, inputs: Inputs, config: Configs = None, *,  # type: ignore[override]
                     return_exceptions: bool = False, **kwargs: Any) -> list[AIMessage]:
        """Async batch over inputs: ONE Triton request for all of them (see `batch`)."""
        from langchain_steerlm import _native_batch

        out = await _native_batch.abatch(self, inputs, config, return_exceptions, kwargs)
        if out is None:
            return await super().abatch(inputs, config, return_exceptions=return_exceptions, **kwargs)  # type: ignore[arg-type,return-value]
        return out

    # ------------------------------------------------------------------ tools and structured output

    def bind_tools(self, tools: Sequence[ToolLike], *, tool_choice: Any = None,  # type: ignore[override]
                   **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        """Offer `tools` through the prompted JSON protocol (see `langchain_steerlm.tools`)."""
        from langchain_steerlm.tools import bind_tool_kwargs

        strict = kwargs.pop("strict", None)  # sent as guided_strict; the calls are checked (Prepared.check_strict)
        bound: Runnable[LanguageModelInput, AIMessage] = self.bind(**bind_tool_kwargs(tools, tool_choice, strict),
                                                                   **kwargs)
        return bound

    def with_structured_output(self, schema: dict[str, Any] | type, *, include_raw: bool = False,  # type: ignore[override]
                               method: str = "function_calling", strict: bool | None = None,
                               **kwargs: Any) -> Runnable[LanguageModelInput, dict[str, Any] | BaseModel]:
        """Structured output, guided where the server can (see `langchain_steerlm.tools.structured_output`).

        ``method``: "function_calling" (default) — `schema` is the one tool to call; "json_schema" /
        "json_mode" — `schema` is the guided-decoding schema and the reply's JSON is parsed. ``strict=True``
        also checks the output against the schema (`SteerLMStructuredOutputError` when it does not match).
        ``include_raw=True`` returns ``{"raw", "parsed", "parsing_error"}``.
        """
        from langchain_steerlm.tools import structured_output

        if kwargs:
            raise ConfigurationError(f"unsupported argument(s) {sorted(kwargs)} for with_structured_output")
        return structured_output(self, schema, method=method, include_raw=include_raw, strict=strict)
