"""`SteerLM`: the LlamaIndex LLM for SteerLM / NeMo-aligned chat models served by Triton."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from llama_index.core.base.llms.generic_utils import messages_to_prompt as generic_messages_to_prompt
from llama_index.core.base.llms.types import (
    ChatMessage,
    ChatResponse,
    ChatResponseAsyncGen,
    ChatResponseGen,
    CompletionResponse,
    CompletionResponseAsyncGen,
    CompletionResponseGen,
    LLMMetadata,
    MessageRole,
)
from llama_index.core.bridge.pydantic import ConfigDict, PrivateAttr
from llama_index.core.llms.callbacks import llm_chat_callback, llm_completion_callback
from llama_index.core.llms.llm import ToolSelection, default_completion_to_prompt
from llama_index.core.prompts import BasePromptTemplate
from llama_index.core.types import TokenAsyncGen, TokenGen

from llamaindex_steerlm._convert import PreparedRequest, chat_response, completion_response, to_messages
from llamaindex_steerlm._fields import SteerLMFields
from llamaindex_steerlm._stream import achat_stream, acomplete_stream, chat_stream, complete_stream
from llamaindex_steerlm.prompts import swap_closed_qa
from llamaindex_steerlm.tools import prepare_tool_chat, single_tool_call, to_tool_choice, to_tool_specs, tool_selections
from steerlm.client_cache import ClientCache
from steerlm.errors import ConfigurationError
from steerlm.profiles import ModelProfile
from steerlm.prompts import Message, render
from steerlm.requests import ATTRIBUTE_NAMES, RequestOptions, refine_options, split_options, with_tool_instructions
from steerlm.structured import with_json_instructions
from steerlm.tokens import guard_prompt
from steerlm.tools import required_call_guide

if TYPE_CHECKING:
    from llama_index.core.tools.types import BaseTool

    from steerlm.client import AsyncSteerLMClient, SteerLMClient

__all__ = ["SteerLM"]


def _check_verbatim(kwargs: Mapping[str, Any], why: str) -> None:
    """A verbatim prompt cannot take per-call steering, context or tools: say so instead of ignoring."""
    used = sorted(k for k in (*ATTRIBUTE_NAMES, "attributes", "context", "tools") if kwargs.get(k))
    if used:
        raise ConfigurationError(f"{used} need the profile's template, which {why} bypasses")


class SteerLM(SteerLMFields):
    """SteerLM / NeMo-aligned chat models on Triton (NeMo deploy or TensorRT-LLM), for LlamaIndex.

    Setup:
        ``pip install "steerlm[llamaindex]"``; a Triton server with the model (``steerlm serve`` runs a
        local one). ``url`` is ``grpc://host:8001`` (streams), ``http://host:8000``, TLS ``grpcs://`` /
        ``https://``; a bare ``host:port`` means gRPC (NemoQuery reads it as HTTP);
        ``openai+http://host:8000/v1`` for vLLM, trtllm-serve, NIM and other OpenAI-compatible servers
        (``model`` is then the served model id, ``profile`` the template).

    Instantiate:
        .. code-block:: python

            from llamaindex_steerlm import SteerLM
            llm = SteerLM(model="Llama2-70B-SteerLM-Chat", url="grpc://localhost:8001",
                          max_tokens=512, verbosity=2, timeout=60, max_retries=2)

        ``profile`` (the prompt template, attributes and stops) defaults to ``model`` when that names a
        profile. Every field — sampling, ``stop``, each steering attribute, ``attributes={...}`` — can
        also be given per call; invalid values raise ``steerlm.ConfigurationError``.

    Invoke:
        .. code-block:: python

            llm.complete("Name three moons of Jupiter.", verbosity=0).text
            llm.chat([ChatMessage(role="user", content="Hi")]).message.content
            llm.chat(msgs, context=document_text)      # closed-QA-with-context template

    Stream:
        .. code-block:: python

            for r in llm.stream_complete("Tell a story", creativity=4):
                print(r.delta, end="")

    Async (native asyncio over the async Triton client, no threads):
        .. code-block:: python

            r = await llm.acomplete("Hi"); r = await llm.achat(msgs)
            async for r in await llm.astream_chat(msgs): print(r.delta, end="")

    Query engines use the closed-QA template automatically (``closed_qa=False`` turns that off);
    ``closed_qa_templates()`` gives the templates explicitly. Tools go through ``steerlm.tools``.
    """

    model_config = ConfigDict(defer_build=False)  # the field mixins defer theirs; this model builds now

    _clients: ClientCache = PrivateAttr(default_factory=ClientCache)
    _payload: tuple[object, dict[str, Any]] | None = PrivateAttr(default=None)

    @classmethod
    def class_name(cls) -> str:
        return "SteerLM"

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(context_window=self._window_profile().context_window, num_output=self.max_tokens,
                           is_chat_model=True, is_function_calling_model=True, model_name=self.model,
                           system_role=MessageRole.SYSTEM)

    def to_payload(self) -> dict[str, Any]:
        """`LLM.to_payload` (sent with every call's events): made once per resolution of the fields, copied."""
        private, resolved = self.__pydantic_private__, self.fields()
        cached = private.get("_payload")  # type: ignore[union-attr]
        if cached is None or cached[0] is not resolved:
            cached = private["_payload"] = (resolved, super().to_payload())  # type: ignore[index]
        return dict(cached[1])

    def _window_profile(self) -> ModelProfile:
        """The profile, with `context_window` overridden when that field is set."""
        profile = self.fields().profile
        window = self.context_window
        return profile if window is None else replace(profile, context_window=window)

    # ------------------------------------------------------------------ clients
    def _cache(self) -> ClientCache:
        # Read from pydantic's private dict: `self._clients` goes through BaseModel.__getattr__ (~3 µs).
        return self.__pydantic_private__["_clients"]  # type: ignore[index,no-any-return]

    def _sync_client(self) -> SteerLMClient:
        return self._cache().sync(self.fields().settings)

    async def _async_client(self) -> AsyncSteerLMClient:
        return await self._cache().aio(self.fields().settings)

    def close(self) -> None:
        """Close the sync clients (async ones: `aclose`); a later call opens new ones."""
        self._clients.close()

    async def aclose(self) -> None:
        """Close the async clients of the running event loop (they also close when the loop shuts down)."""
        await self._clients.aclose()

    # ------------------------------------------------------------------ request preparation
    def _options(self, kwargs: dict[str, Any], allowed: tuple[str, ...]) -> tuple[RequestOptions, dict[str, Any]]:
        if not kwargs:  # the fields' options, resolved once
            fields = self.fields()
            return fields.options, kwargs
        options, rest = split_options(kwargs)
        unknown = sorted(set(rest) - set(allowed))
        if unknown:
            raise ConfigurationError(
                f"unknown argument(s) {unknown}; per-call options are the generation parameters, the "
                f"steering attributes, 'attributes' and {', '.join(repr(a) for a in allowed)}")
        context = rest.get("context")
        if context is not None and not isinstance(context, str):
            raise ConfigurationError(f"context must be a string, got {type(context).__name__}")
        fields = self.fields()
        return refine_options(fields.options, fields.profile, options), rest

    def _prepare_chat(self, messages: Sequence[ChatMessage], kwargs: dict[str, Any]) -> PreparedRequest:
        options, rest = self._options(kwargs, ("context", "tools", "tool_choice"))
        specs, choice = (to_tool_specs(rest.get("tools") or ()), to_tool_choice(rest.get("tool_choice"), False)
                         ) if rest else ([], None)
        hook = self.messages_to_prompt
        if hook is not None and hook is not generic_messages_to_prompt:
            _check_verbatim(kwargs, "a custom messages_to_prompt")
            return self._prepared(hook(messages), options, {})
        profile = self.fields().profile
        neutral = to_messages(messages)
        if specs:
            neutral = with_tool_instructions(neutral, specs, choice, profile)
            guide = required_call_guide(specs, choice) if options.params.guided_json is None else None
            if guide is not None:  # a required call: guided decoding to the protocol where the server has it
                options = replace(options, params=options.params.merge(guided_json=guide))
        elif options.params.guided_json is not None:  # the prompted JSON protocol: the fallback where no guide
            neutral = with_json_instructions(neutral, options.params.guided_json, profile)
        prompt = render(profile, neutral, options.attributes, context=rest.get("context"))
        return self._prepared(prompt, options, options.attributes, tools=bool(specs) and choice != "none")

    def _prepare_complete(self, prompt: str, formatted: bool, kwargs: dict[str, Any]) -> PreparedRequest:
        options, rest = self._options(kwargs, ("context",))
        hook = self.completion_to_prompt
        if formatted or (hook is not None and hook is not default_completion_to_prompt):
            _check_verbatim(kwargs, "formatted=True" if formatted else "a custom completion_to_prompt")
            text = prompt if formatted or hook is None else hook(prompt)
            return self._prepared(text, options, {})
        system = [Message.text("system", self.system_prompt)] if self.system_prompt else []
        text = render(self.fields().profile, [*system, Message.text("user", prompt)],
                      options.attributes, context=rest.get("context"))
        return self._prepared(text, options, options.attributes)

    def _prepared(self, prompt: str, options: RequestOptions, attributes: Mapping[str, int], *,
                  tools: bool = False) -> PreparedRequest:
        """Count the prompt and check the context window when a tokenizer is configured."""
        counter = self.token_counter
        tokens = None if counter is None else guard_prompt(
            counter, prompt, options.params.max_tokens, self._window_profile(), model=self.model)
        return PreparedRequest(model=self.model, prompt=prompt, options=options, attributes=attributes,
                               tools=tools, counter=counter, prompt_tokens=tokens)

    # ------------------------------------------------------------------ sync
    @llm_chat_callback()
    def chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        request = self._prepare_chat(messages, kwargs)
        completion = self._sync_client().generate(request.prompt, request.options.params)
        return chat_response(request, completion.text, completion.finish_reason, usage=completion.usage,
                             logprobs=completion.logprobs)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        request = self._prepare_complete(prompt, formatted, kwargs)
        completion = self._sync_client().generate(request.prompt, request.options.params)
        return completion_response(request, completion.text, completion.finish_reason, usage=completion.usage,
                                   logprobs=completion.logprobs)

    @llm_chat_callback()
    def stream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseGen:
        request = self._prepare_chat(messages, kwargs)
        return chat_stream(self._sync_client(), request)

    @llm_completion_callback()
    def stream_complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponseGen:
        request = self._prepare_complete(prompt, formatted, kwargs)
        return complete_stream(self._sync_client(), request)

    # ------------------------------------------------------------------ async
    @llm_chat_callback()
    async def achat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponse:
        request = self._prepare_chat(messages, kwargs)
        client = await self._async_client()
        completion = await client.generate(request.prompt, request.options.params)
        return chat_response(request, completion.text, completion.finish_reason, usage=completion.usage,
                             logprobs=completion.logprobs)

    @llm_completion_callback()
    async def acomplete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        request = self._prepare_complete(prompt, formatted, kwargs)
        client = await self._async_client()
        completion = await client.generate(request.prompt, request.options.params)
        return completion_response(request, completion.text, completion.finish_reason, usage=completion.usage,
                                   logprobs=completion.logprobs)

    @llm_chat_callback()
    async def astream_chat(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatResponseAsyncGen:
        request = self._prepare_chat(messages, kwargs)
        client = await self._async_client()
        return achat_stream(client, request)

    @llm_completion_callback()
    async def astream_complete(self, prompt: str, formatted: bool = False,
                               **kwargs: Any) -> CompletionResponseAsyncGen:
        request = self._prepare_complete(prompt, formatted, kwargs)
        client = await self._async_client()
        return acomplete_stream(client, request)

    # ------------------------------------------------------------------ closed QA in query engines
    def _qa(self, prompt: BasePromptTemplate) -> BasePromptTemplate:
        return swap_closed_qa(prompt) if self.closed_qa else prompt

    def predict(self, prompt: BasePromptTemplate, **prompt_args: Any) -> str:
        return super().predict(self._qa(prompt), **prompt_args)

    def stream(self, prompt: BasePromptTemplate, **prompt_args: Any) -> TokenGen:
        return super().stream(self._qa(prompt), **prompt_args)

    async def apredict(self, prompt: BasePromptTemplate, **prompt_args: Any) -> str:
        return await super().apredict(self._qa(prompt), **prompt_args)

    async def astream(self, prompt: BasePromptTemplate, **prompt_args: Any) -> TokenAsyncGen:
        return await super().astream(self._qa(prompt), **prompt_args)

    # ------------------------------------------------------------------ function calling
    def _prepare_chat_with_tools(
        self,
        tools: Sequence[BaseTool],
        user_msg: str | ChatMessage | None = None,
        chat_history: list[ChatMessage] | None = None,
        verbose: bool = False,
        allow_parallel_tool_calls: bool = False,
        tool_required: bool = False,
        tool_choice: str | dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        return {**kwargs, **prepare_tool_chat(tools, user_msg, chat_history, tool_choice, tool_required)}

    def _validate_chat_with_tools_response(self, response: ChatResponse, tools: Sequence[BaseTool],
                                           allow_parallel_tool_calls: bool = False,
                                           **kwargs: Any) -> ChatResponse:
        return response if allow_parallel_tool_calls else single_tool_call(response)

    def get_tool_calls_from_response(self, response: ChatResponse, error_on_no_tool_call: bool = True,
                                     **kwargs: Any) -> list[ToolSelection]:
        return tool_selections(response, error_on_no_tool_call)
