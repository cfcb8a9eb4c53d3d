"""The constructor fields of `SteerLM` and their validation (kept apart from the call logic)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llama_index.core.bridge.pydantic import ConfigDict, Field, PrivateAttr, ValidationError
from llama_index.core.constants import DEFAULT_NUM_OUTPUTS
from llama_index.core.llms.function_calling import FunctionCallingLLM

from steerlm.adapter_fields import ResolvedOnce, SecureFields, check_client_kwargs, check_keywords, configuration_error
from steerlm.client.memo import SettingsMemo, cached_settings
from steerlm.client.settings import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    DEFAULT_URL,
    ClientSettings,
)
from steerlm.env import with_env_defaults
from steerlm.fields import SteeringFields
from steerlm.params import PARAM_NAMES
from steerlm.profiles import ModelProfile, profile_for
from steerlm.requests import ATTRIBUTE_NAMES, RequestOptions, resolve_options
from steerlm.tokens import TokenCounter, load_token_counter

__all__ = ["DEFAULT_URL", "SteerLMFields"]

_CLIENT_FIELDS = ("model", "url", "profile", "timeout", "max_retries", "headers", "verify_ssl", "root_certificates",
                  "client_certificate", "client_key")


def _unresolved() -> None:
    return None


@dataclass(frozen=True)
class _Resolved:
    """The fields resolved once; `owner` is the id of the model they belong to (copies resolve their own)."""

    owner: int
    profile: ModelProfile
    options: RequestOptions
    settings: ClientSettings

    def __deepcopy__(self, memo: dict[int, Any]) -> _Resolved:
        return self  # immutable; a copy of the model re-resolves anyway (another owner)

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return _unresolved, ()  # pickled models resolve again when loaded


class SteerLMFields(SteeringFields, SecureFields, ResolvedOnce, FunctionCallingLLM):
    """Fields shared by every call; validated for the profile at construction (ConfigurationError).

    The steering-attribute fields come from the core's `SteeringFields` mixin, the credential and TLS
    ones (``headers``, ``api_key``, ``root_certificates``, ``client_certificate``, ``client_key``,
    ``verify_ssl``; secrets redacted in repr and ``to_dict()``) from `SecureFields`.
    """

    # A mixin: `SteerLM` builds the schema.
    model_config = ConfigDict(defer_build=True)

    _settings_memo: SettingsMemo = PrivateAttr(default_factory=SettingsMemo)

    model: str = Field(description="Triton model name, e.g. 'Llama2-70B-SteerLM-Chat'.")
    url: str | list[str] = Field(default=DEFAULT_URL, description="Server URL (a list = load-balanced replicas).")
    profile: str | None = Field(default=None, description="Prompt profile; defaults to `model`.")
    timeout: float = Field(default=DEFAULT_TIMEOUT, description="Per-request client timeout, seconds.")
    max_retries: int = Field(default=DEFAULT_MAX_RETRIES, description="Retries of retryable server errors.")
    max_tokens: int = Field(default=DEFAULT_NUM_OUTPUTS, description="Tokens to generate at most.")
    temperature: float | None = Field(default=None, description="Sampling temperature.")
    top_k: int | None = Field(default=None, description="Top-k sampling (1 = greedy).")
    top_p: float | None = Field(default=None, description="Nucleus sampling mass.")
    seed: int | None = Field(default=None, description="Random seed.")
    repetition_penalty: float | None = Field(default=None, description="Repetition penalty (>= 1).")
    stop: list[str] | None = Field(default=None, description="Extra stop strings (profile stops always apply).")
    logprobs: bool | None = Field(
        default=None, description="Ask for per-token log-probabilities (where the server returns them).")
    top_logprobs: int | None = Field(
        default=None, description="Also list the N (0-20) most likely tokens at each position (implies logprobs).")
    guided_json: dict[str, Any] | str | None = Field(
        default=None, description="A JSON schema the reply is constrained to where the server has guided decoding.")
    guided_strict: bool | None = Field(default=None, description="Sent as response_format strict (OpenAI-compatible).")
    context_window: int | None = Field(
        default=None, gt=0, description="Override the profile's context window (tokens): metadata and the guard.")
    additional_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Extra server inputs by name (LoRA ids, min_tokens, ...), checked "
        "against the inputs the model declares; on OpenAI-compatible servers, fields of the request body.")
    extra_body: dict[str, Any] | None = Field(
        default=None, description="JSON fields merged into an OpenAI-compatible request (vLLM structured_outputs...).")
    client_kwargs: dict[str, Any] = Field(default_factory=dict,
                                          description="Other SteerLMClient options (stream_timeout, ...).")
    tokenizer: Any = Field(default=None, exclude=True,
                           description="Local tokenizer.json / HF tokenizer dir / object: usage + window guard.")
    closed_qa: bool = Field(default=True, description="Use the closed-QA template in query engines.")

    def __init__(self, **data: Any) -> None:
        data = with_env_defaults(data)  # STEERLM_URL / STEERLM_API_KEY / STEERLM_MODEL
        check_keywords(type(self), data)
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise configuration_error(type(self).__name__, exc) from None
        check_client_kwargs(self.client_kwargs, taken=_CLIENT_FIELDS)
        self.check_secure_fields()
        self.fields()  # validates url, timeout, max_retries, headers, TLS, client_kwargs and options
        _ = self.token_counter

    def fields(self) -> _Resolved:
        """The fields resolved and validated once (again after a field is assigned or the model copied)."""
        resolved: _Resolved | None = self.cached_resolution()
        if resolved is None:
            profile = self.resolved_profile
            settings = self.client_settings()
            resolved = self._resolved = _Resolved(id(self), profile,
                                                  resolve_options(profile, self.default_options()), settings)
        return resolved

    @property
    def resolved_profile(self) -> ModelProfile:
        """The profile: `profile` if given, else the one named like `model`."""
        return profile_for(self.profile, self.model)

    @property
    def token_counter(self) -> TokenCounter | None:
        """The configured tokenizer as a TokenCounter (loaded once per path), or None."""
        return None if self.tokenizer is None else load_token_counter(self.tokenizer)

    def default_options(self) -> dict[str, Any]:
        """The option layer of the constructor fields (see `steerlm.requests`)."""
        names = (*PARAM_NAMES, *ATTRIBUTE_NAMES, "attributes")
        layer = {name: getattr(self, name) for name in names if name != "extra_inputs"}
        layer["extra_inputs"] = self.additional_kwargs or None
        return layer

    def client_settings(self) -> ClientSettings:
        """The `ClientSettings` of these fields (built once per set of field values: `SettingsMemo`)."""
        values = (self.model, self.url, self.profile, self.timeout, self.max_retries, self.headers, self.api_key,
                  self.verify_ssl, self.root_certificates, self.client_certificate, self.client_key,
                  self.client_kwargs)
        return self._settings_memo.get(values, lambda: cached_settings(
            self.model, self.url, profile=self.resolved_profile, timeout=self.timeout, max_retries=self.max_retries,
            **self.secure_client_options(), **self.client_kwargs))
