"""Fields and per-call option handling shared by `ChatSteerLM` and `SteerLM` (one definition, two classes).

Option precedence, later wins: the profile's defaults < constructor fields < ``.bind(...)`` / per-call
keyword arguments; within one layer a per-attribute key (``verbosity=1``) beats the ``attributes`` dict.
Merging and validation are the core's (`steerlm.requests.resolve_options`), so both adapters (and the
LlamaIndex one) agree on every rule and error message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.language_models import LangSmithParams
from pydantic import ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from steerlm.adapter_fields import ResolvedOnce, SecureFields, check_client_kwargs, check_keywords, configuration_error
from steerlm.client.memo import SettingsMemo, cached_settings
from steerlm.client.settings import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    DEFAULT_URL,
    CallOptions,
    ClientSettings,
)
from steerlm.env import with_env_defaults
from steerlm.errors import ConfigurationError
from steerlm.fields import SteeringFields
from steerlm.params import PARAM_NAMES, GenerationParams
from steerlm.profiles import ModelProfile, find_profile, profile_for
from steerlm.requests import ATTRIBUTE_NAMES, OPTION_NAMES, RequestOptions, refine_options, resolve_options
from steerlm.secrets import is_secret_header, secret_text
from steerlm.suggest import did_you_mean
from steerlm.tokens import TokenCounter, load_token_counter

__all__ = ["ATTRIBUTES_KEY", "DEFAULT_MODEL", "DEFAULT_URL", "CallSpec", "SteerLMFields"]

DEFAULT_MODEL = "Llama2-70B-SteerLM-Chat"
ATTRIBUTES_KEY = "steerlm_attributes"  # response_metadata / generation_info key of the labels used
CONNECTION_NAMES = ("model", "url", "profile", "timeout", "max_retries", "headers", "api_key")
# Client settings the adapter sets from its own fields (so not accepted in `client_kwargs`).
_CLIENT_FIELDS = ("model", "url", "profile", "timeout", "max_retries", "headers", "verify_ssl", "root_certificates",
                  "client_certificate", "client_key")
CALL_NAMES = frozenset({*OPTION_NAMES, *CONNECTION_NAMES, "context"})  # accepted per call / by .bind()
_OPTION_SET = frozenset(OPTION_NAMES)
_SETTINGS_NAMES = ("model", "url", "profile", "max_retries")  # per-call kwargs that change the client
# Framework noise, harmless. LangChain pops `ls_structured_output_format` before `_generate`, but a
# batch's kwargs still carry it when `_batch_plan` renders the inputs.
IGNORED_KWARGS = frozenset({"stream", "parallel_tool_calls", "strict", "ls_structured_output_format"})


def _unresolved() -> None:
    return None


@dataclass(frozen=True)
class _Resolved:
    """The fields resolved once: profile, options, client settings, identifying params; `owner` is the
    id of the model they belong to (a copy made by `model_copy` resolves its own)."""

    owner: int
    profile: ModelProfile
    options: RequestOptions
    client: ClientSettings
    identifying: Mapping[str, Any]

    def __deepcopy__(self, memo: dict[int, Any]) -> _Resolved:
        return self  # immutable; a copy of the model re-resolves anyway (another owner)

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return _unresolved, ()  # pickled models resolve again when loaded


@dataclass(frozen=True)
class CallSpec:
    """Everything one request needs, resolved from fields + per-call kwargs (pure, sync/async shared)."""

    profile: ModelProfile
    attributes: Mapping[str, int]
    params: GenerationParams
    client: ClientSettings
    call: CallOptions | None  # per-call timeout / headers / api_key: request options on the same client
    context: str | None
    extra: Mapping[str, Any]  # adapter-specific kwargs (tools, tool_choice, raw_prompt)

    @property
    def model(self) -> str:
        return self.client.model


class SteerLMFields(SteeringFields, SecureFields, ResolvedOnce):
    """Constructor fields common to the chat model and the string LLM (steering ones: `SteeringFields`,
    credentials and TLS: `SecureFields`)."""

    model_config = ConfigDict(arbitrary_types_allowed=True, populate_by_name=True, defer_build=True)  # a mixin

    _settings_memo: SettingsMemo = PrivateAttr(default_factory=SettingsMemo)

    model: str = Field(default=DEFAULT_MODEL, description="Triton model name.")
    url: str | list[str] = Field(
        default=DEFAULT_URL,
        description="grpc://, http://, https://, grpcs://, bare host:port (= gRPC), nemo-rest://, or "
                    "openai+http(s)://host:port/v1 (vLLM, trtllm-serve, NIM, ...); a list fails over.",
    )
    steerlm_profile: str | ModelProfile | None = Field(
        default=None,
        description="Prompt profile (pass it as `profile=`); defaults to `model` when that names one.",
    )
    timeout: float = Field(default=DEFAULT_TIMEOUT, gt=0, description="Client-side timeout per request, seconds.")
    max_retries: int = Field(default=DEFAULT_MAX_RETRIES, ge=0,
                             description="Retries of retryable errors (0 disables).")
    client_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Other client options (`steerlm.client.ClientSettings`: stream_timeout, "
                                          "ready_timeout, transport, ...)."
    )
    max_tokens: int | None = Field(default=None, description="Maximum tokens to generate.")
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None
    repetition_penalty: float | None = None
    stop: list[str] | None = Field(default=None, description="Extra stop strings (profile stops always apply).")
    logprobs: bool | None = Field(
        default=None, description="Ask for per-token log-probabilities (where the server returns them).")
    top_logprobs: int | None = Field(
        default=None, description="Also list the N (0-20) most likely tokens at each position (implies logprobs).")
    guided_json: dict[str, Any] | str | None = Field(
        default=None, description="A JSON schema the reply is constrained to where the server has guided decoding.")
    guided_strict: bool | None = Field(default=None, description="Sent as response_format strict (OpenAI-compatible).")
    model_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Extra server inputs by name (LoRA ids, min_tokens, ...), checked "
        "against the inputs the model declares; on OpenAI-compatible servers, fields of the request body.")
    extra_body: dict[str, Any] | None = Field(
        default=None, description="JSON fields merged into an OpenAI-compatible request (vLLM structured_outputs...).")
    streaming: bool = Field(default=False, description="Stream internally for invoke().")
    tokenizer: Any = Field(
        default=None,
        exclude=True,
        description="Local tokenizer.json / HF tokenizer dir / tokenizer object: usage counts + window guard.",
    )

    @model_validator(mode="before")
    @classmethod
    def _profile_alias(cls, data: Any) -> Any:
        """`profile="Llama2-70B-SteerLM-Chat"` (or a steerlm ModelProfile) selects the prompt profile.

        LangChain's own `BaseChatModel.profile` (a capabilities dict) is filled from it.
        """
        if isinstance(data, dict) and isinstance(data.get("profile"), str | ModelProfile):
            data = dict(data)
            data["steerlm_profile"] = data.pop("profile")
        return data

    def __init__(self, **data: Any) -> None:
        """Validate every argument (ConfigurationError saying what to fix); no network I/O. ``url``,
        ``api_key`` and ``model`` default to ``STEERLM_URL``, ``STEERLM_API_KEY``, ``STEERLM_MODEL``."""
        data = with_env_defaults(data)
        check_keywords(type(self), data, also=("profile",))
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise configuration_error(type(self).__name__, exc) from None
        check_client_kwargs(self.client_kwargs, taken=_CLIENT_FIELDS)
        self.check_secure_fields()
        self._fields()  # validates every client setting and option

    def _fields(self) -> _Resolved:
        """The fields resolved and validated once (again after a field is assigned or the model copied)."""
        resolved: _Resolved | None = self.cached_resolution()
        if resolved is None:
            profile = self.resolved_profile
            client = self._client_settings(self.model, profile, {})
            resolved = self._resolved = _Resolved(
                owner=id(self), profile=profile, options=resolve_options(profile, self.option_layer()),
                client=client, identifying=self._identifying())
        return resolved

    @property
    def lc_secrets(self) -> dict[str, str]:
        """Secrets serialization writes as references: the keys, and each credential header (by its name,
        e.g. ``headers.authorization`` -> ``STEERLM_HEADER_AUTHORIZATION``)."""
        secrets = {"api_key": "STEERLM_API_KEY", "client_key": "STEERLM_CLIENT_KEY"}
        for name in self.headers or {}:
            if is_secret_header(name) and "." not in name:
                secrets[f"headers.{name}"] = "STEERLM_HEADER_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()
        return secrets

    # ------------------------------------------------------------------ resolution

    @property
    def resolved_profile(self) -> ModelProfile:
        """`profile=` when given, else the profile named like `model` (ConfigurationError if none)."""
        return _profile_for(self.steerlm_profile, self.model)

    @property
    def token_counter(self) -> TokenCounter | None:
        """The configured tokenizer as a TokenCounter (loaded once per path), or None."""
        return None if self.tokenizer is None else load_token_counter(self.tokenizer)

    def option_layer(self) -> dict[str, Any]:
        """The constructor fields as a `steerlm.requests` option layer."""
        layer = {name: getattr(self, name) for name in OPTION_NAMES if name != "extra_inputs"}
        layer["extra_inputs"] = self.model_kwargs or None
        return layer

    def resolve_call(self, stop: list[str] | None, kwargs: Mapping[str, Any], *,
                     extra_names: frozenset[str] = frozenset()) -> CallSpec:
        """Validate per-call kwargs and merge them over the fields (ConfigurationError on bad input)."""
        unknown = kwargs.keys() - CALL_NAMES - IGNORED_KWARGS - extra_names if kwargs else None
        if unknown:
            hints = "".join(did_you_mean(k, [*CALL_NAMES, *extra_names]) for k in sorted(unknown))
            raise ConfigurationError(
                f"unknown argument(s) {sorted(unknown)}{hints}; per-call options are the constructor fields "
                f"({', '.join((*CONNECTION_NAMES, *PARAM_NAMES))}, 'attributes', the steering attributes "
                f"{list(ATTRIBUTE_NAMES)}), 'context'{''.join(', ' + repr(n) for n in sorted(extra_names))}"
            )
        fields = self._fields()
        call = {k: v for k, v in kwargs.items() if k in _OPTION_SET}
        if stop is not None:
            call["stop"] = stop
        context = kwargs.get("context")
        if context is not None and not isinstance(context, str):
            raise ConfigurationError(f"context must be a string, got {type(context).__name__}")
        extra = {k: v for k, v in kwargs.items() if k in extra_names} if extra_names else {}
        per_call = CallOptions.of(kwargs.get("timeout"), kwargs.get("headers"), kwargs.get("api_key"))
        if not kwargs or not any(kwargs.get(name) is not None for name in _SETTINGS_NAMES):  # the fields' client
            options = refine_options(fields.options, fields.profile, call)
            return CallSpec(fields.profile, options.attributes, options.params, fields.client, per_call, context,
                            extra)
        model = kwargs.get("model") or self.model
        explicit = kwargs.get("profile")
        if explicit is None and kwargs.get("model"):
            explicit = find_profile(model) or self.resolved_profile
        profile = self.resolved_profile if explicit is None else _profile_for(explicit, model)
        options = (refine_options(fields.options, profile, call) if profile is fields.profile
                   else resolve_options(profile, self.option_layer(), call))
        client = self._client_settings(model, profile, kwargs)
        return CallSpec(profile, options.attributes, options.params, client, per_call, context, extra)

    def _client_settings(self, model: str, profile: ModelProfile, kwargs: Mapping[str, Any]) -> ClientSettings:
        """The client settings of a call: the fields, with a per-call `url` / `max_retries` (per-call
        timeout, headers and api_key are `CallOptions`, not settings: the same client serves them).
        Built once per set of field values (`SettingsMemo`)."""
        url = kwargs.get("url") or self.url
        retries = kwargs.get("max_retries")
        retries = self.max_retries if retries is None else retries
        values = (model, url, profile, self.timeout, retries, self.headers, self.api_key, self.verify_ssl,
                  self.root_certificates, self.client_certificate, self.client_key, self.client_kwargs)
        return self._settings_memo.get(values, lambda: cached_settings(
            model, url, profile=profile, timeout=self.timeout, max_retries=retries, headers=self.headers,
            api_key=self.api_key, verify_ssl=self.verify_ssl, root_certificates=self.root_certificates,
            client_certificate=self.client_certificate,
            client_key=secret_text(self.client_key, what="client_key"), **self.client_kwargs,
        ))

    def ls_params(self, stop: list[str] | None, kwargs: Mapping[str, Any],
                  model_type: Literal["chat", "llm"]) -> LangSmithParams:
        """LangSmith params: stable provider, per-call model first."""
        params = LangSmithParams(ls_provider="steerlm", ls_model_name=kwargs.get("model") or self.model,
                                 ls_model_type=model_type)
        temperature = kwargs.get("temperature", self.temperature)
        if isinstance(temperature, int | float):
            params["ls_temperature"] = float(temperature)
        max_tokens = kwargs.get("max_tokens", self.max_tokens)
        if isinstance(max_tokens, int):
            params["ls_max_tokens"] = max_tokens
        stops = stop if stop is not None else kwargs.get("stop", self.stop)
        if stops:
            params["ls_stop"] = list(stops)
        return params

    def identifying(self) -> dict[str, Any]:
        """`_identifying_params`: what distinguishes two configured models (LangChain asks per call)."""
        return dict(self._fields().identifying)

    def _identifying(self) -> dict[str, Any]:
        profile = self.steerlm_profile
        return {
            "model": self.model,
            "url": self.url,
            "profile": profile.name if isinstance(profile, ModelProfile) else profile,
            **{k: v for k, v in self.option_layer().items() if v is not None},
        }


def _profile_for(explicit: str | ModelProfile | None, model: str) -> ModelProfile:
    profile = profile_for(explicit, model)
    if profile.family == "reward":
        raise ConfigurationError(
            f"{profile.name!r} is a reward model; use steerlm.RewardModel to score answers"
        )
    return profile
