"""ChatSteerLM / SteerLM fields and per-call options: validation, precedence, profiles, no network."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel

from langchain_steerlm import ChatSteerLM, SteerLM
from langchain_steerlm._client import _CACHE
from steerlm.errors import ConfigurationError
from steerlm.profiles import get_profile
from steerlm.requests import ATTRIBUTE_NAMES

MODELS = [ChatSteerLM, SteerLM]


@pytest.mark.parametrize("cls", MODELS)
def test_one_field_per_steering_attribute_of_every_profile(cls: type[Any]) -> None:
    assert set(ATTRIBUTE_NAMES) <= set(cls.model_fields)
    assert {"attributes", "model", "url", "timeout", "max_retries", "max_tokens", "temperature", "top_k",
            "top_p", "seed", "stop", "headers", "api_key", "streaming", "tokenizer"} <= set(cls.model_fields)


@pytest.mark.parametrize("cls", MODELS)
def test_construction_never_touches_the_network(cls: type[Any]) -> None:
    before = len(_CACHE)
    model = cls(url="grpc://127.0.0.1:9", verbosity=1, timeout=0.5)  # nothing listens on port 9
    assert model.verbosity == 1
    assert len(_CACHE) == before  # no client was made


@pytest.mark.parametrize("cls", MODELS)
@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"model": "my-triton-model"}, ["'my-triton-model'", "profile="]),
        ({"verbosity": 7}, ["verbosity=7", "0 to 4"]),
        ({"attributes": {"humor": -1}}, ["humor=-1", "0 to 4"]),
        ({"violence": 1}, ["'violence'", "quality, toxicity"]),
        ({"profile": "NV-Llama2-70B-RLHF-Chat", "verbosity": 1}, ["takes no steering attributes"]),
        ({"profile": "Llama2-13B-SteerLM-RM"}, ["reward model"]),
        ({"temperature": -1.0}, ["temperature"]),
        ({"url": "ftp://x:1"}, ["ftp"]),
        ({"client_kwargs": {"signature": ["x"]}}, ["signature must be"]),
        ({"client_kwargs": {"ready_timeuot": 1}}, ["'ready_timeuot'", "did you mean 'ready_timeout'"]),
    ],
)
def test_bad_construction_raises_configuration_error(cls: type[Any], kwargs: dict[str, Any],
                                                     words: list[str]) -> None:
    with pytest.raises(ConfigurationError) as info:
        cls(**kwargs)
    for word in words:
        assert word in str(info.value)


def test_profile_argument_selects_the_template_and_fills_langchains_profile() -> None:
    model = ChatSteerLM(model="my-triton-model", profile="SteerLM-Llama2-13B", violence=9)
    assert model.resolved_profile.name == "SteerLM-Llama2-13B"
    assert model.profile == {"name": "SteerLM-Llama2-13B", "max_input_tokens": 4096, "max_output_tokens": 4096,
                             "text_inputs": True, "text_outputs": True, "tool_calling": True, "tool_choice": True,
                             "tool_call_streaming": True, "structured_output": False}
    by_object = ChatSteerLM(model="m", profile=get_profile("Llama3-70B-SteerLM-Chat"))
    assert by_object.resolved_profile.name == "Llama3-70B-SteerLM-Chat"
    llm = SteerLM(model="nemo", profile="Llama3-70B-PPO-Chat")
    assert llm.resolved_profile.name == "Llama3-70B-PPO-Chat"


def test_attribute_precedence_fields_then_call() -> None:
    model = ChatSteerLM(attributes={"verbosity": 0, "humor": 3}, verbosity=2)
    spec = model.resolve_call(None, {})
    assert spec.attributes["verbosity"] == 2 and spec.attributes["humor"] == 3
    assert spec.attributes["quality"] == 4  # profile default
    spec = model.resolve_call(None, {"attributes": {"verbosity": 1, "humor": 1}, "humor": 4})
    assert (spec.attributes["verbosity"], spec.attributes["humor"]) == (1, 4)
    assert list(spec.attributes) == list(get_profile("Llama2-70B-SteerLM-Chat").attribute_names)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"verbosity": 9}, ["verbosity=9", "0 to 4"]),
        ({"verbositty": 1}, ["'verbositty'"]),
        ({"not_appropriate": 1}, ["'not_appropriate'"]),
        ({"context": ["doc"]}, ["context must be a string"]),
        ({"max_tokens": 0}, ["max_tokens"]),
    ],
)
def test_bad_call_options_raise(kwargs: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(ConfigurationError) as info:
        ChatSteerLM().resolve_call(None, kwargs)
    for word in words:
        assert word in str(info.value)


def test_generation_params_merge_and_stop() -> None:
    model = ChatSteerLM(max_tokens=10, temperature=0.5, stop=["a"])
    spec = model.resolve_call(None, {"top_k": 1})
    params = spec.params
    assert (params.max_tokens, params.temperature, params.top_k, params.stop) == (10, 0.5, 1, ("a",))
    assert model.resolve_call(["b"], {"max_tokens": 3}).params.stop == ("b",)
    assert model.resolve_call(["b"], {"max_tokens": 3}).params.max_tokens == 3


def test_per_call_model_switches_profile_only_when_it_names_one() -> None:
    model = ChatSteerLM(model="Llama2-70B-SteerLM-Chat")
    assert model.resolve_call(None, {"model": "nemo-v2.0"}).profile.name == "Llama2-70B-SteerLM-Chat"
    assert model.resolve_call(None, {"model": "nemo-v2.0"}).model == "nemo-v2.0"
    assert model.resolve_call(None, {"model": "Llama3-70B-PPO-Chat"}).profile.name == "Llama3-70B-PPO-Chat"
    spec = model.resolve_call(None, {"model": "x", "profile": "SteerLM-Llama2-13B", "violence": 2})
    assert spec.profile.name == "SteerLM-Llama2-13B" and spec.attributes["violence"] == 2


def test_connection_options_per_call_and_api_key_header() -> None:
    model = ChatSteerLM(url="http://h:1", api_key="k", headers={"x-a": "1"}, client_kwargs={"ready_timeout": 1.0})
    spec = model.resolve_call(None, {})
    options = spec.client
    assert options.urls == ("http://h:1",) and dict(options.headers) == {"x-a": "1", "authorization": "Bearer k"}
    assert options.ready_timeout == 1.0 and spec.call is None
    assert "'***'" in repr(options) and "Bearer" not in repr(options)  # the secret stays out of the repr
    assert model.resolve_call(None, {"verbosity": 2}).client is options  # settings are built once, then reused
    # url / max_retries choose a client; timeout / headers / api_key are request options on the same client
    per_call = model.resolve_call(None, {"url": "grpc://h:2", "timeout": 5.0, "headers": {"Authorization": "t"}})
    assert per_call.client.urls == ("grpc://h:2",) and per_call.client.timeout == options.timeout
    assert per_call.call is not None and per_call.call.timeout == 5.0
    assert dict(per_call.call.headers or {}) == {"authorization": "t"}
    keyed = model.resolve_call(None, {"api_key": "other"})
    assert keyed.client is options and dict(keyed.call.headers or {}) == {"authorization": "Bearer other"}
    assert "other" not in repr(keyed.call)
    assert dict(ChatSteerLM().resolve_call(None, {}).client.headers) == {}


@pytest.mark.parametrize(("cls", "kind"), [(ChatSteerLM, "chat"), (SteerLM, "llm")])
def test_ls_params_have_a_stable_provider_and_honour_a_per_call_model(cls: type[Any], kind: str) -> None:
    model = cls(temperature=0, max_tokens=5, stop=["x"])
    params = model._get_ls_params(model="nemo-v2.0")
    assert params == {"ls_provider": "steerlm", "ls_model_name": "nemo-v2.0", "ls_model_type": kind,
                      "ls_temperature": 0.0, "ls_max_tokens": 5, "ls_stop": ["x"]}
    assert model._get_ls_params()["ls_model_name"] == "Llama2-70B-SteerLM-Chat"


def test_types() -> None:
    assert ChatSteerLM()._llm_type == "steerlm-chat" and SteerLM()._llm_type == "steerlm"
    assert isinstance(ChatSteerLM(), BaseChatModel)
    assert ChatSteerLM(verbosity=1)._identifying_params["verbosity"] == 1


@pytest.mark.parametrize("cls", MODELS)
def test_fields_resolve_once_and_again_after_assignment_or_copy(cls: type[Any]) -> None:
    model = cls(model="Llama2-70B-SteerLM-Chat", url="grpc://127.0.0.1:1", verbosity=1, max_tokens=5)
    assert model.resolve_call(None, {}).attributes["verbosity"] == 1
    model.verbosity = 3
    model.max_tokens = 7
    spec = model.resolve_call(None, {})
    assert (spec.attributes["verbosity"], spec.params.max_tokens) == (3, 7)
    copy = model.model_copy(update={"verbosity": 0})
    assert copy.resolve_call(None, {}).attributes["verbosity"] == 0
    assert model.resolve_call(None, {}).attributes["verbosity"] == 3
    model.verbosity = 9
    with pytest.raises(ConfigurationError, match="verbosity=9"):
        model.resolve_call(None, {})


def test_identifying_params_follow_assignment() -> None:
    model = ChatSteerLM(model="Llama2-70B-SteerLM-Chat", url="grpc://127.0.0.1:1", verbosity=1)
    assert model._identifying_params["verbosity"] == 1
    model.verbosity = 2
    assert model._identifying_params["verbosity"] == 2
