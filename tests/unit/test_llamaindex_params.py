"""llamaindex_steerlm.SteerLM without a server: fields and metadata, construction and per-call
validation, the lazy client cache. Nothing here sends a request: the URL points at a closed port, so a
call that got past validation would fail with a connection error instead of the error asserted.
The call paths themselves run against the real local server in tests/integration/test_llamaindex_*.py.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest
from llama_index.core.base.llms.types import ChatMessage

from llamaindex_steerlm import SteerLM
from steerlm import ConfigurationError, PromptError
from steerlm.requests import ATTRIBUTE_NAMES

F1 = "Llama2-70B-SteerLM-Chat"
CLOSED = "grpc://127.0.0.1:9"  # nothing listens there
USER = [ChatMessage(role="user", content="Hi")]


def offline(**kwargs: Any) -> SteerLM:
    return SteerLM(model=F1, url=CLOSED, max_retries=0, client_kwargs={"ready_timeout": 0}, **kwargs)


def test_defaults_metadata_and_class_name() -> None:
    llm = SteerLM(model=F1, max_tokens=300)
    meta = llm.metadata
    assert (meta.context_window, meta.num_output, meta.model_name) == (4096, 300, F1)
    assert meta.is_chat_model and meta.is_function_calling_model
    assert SteerLM.class_name() == "SteerLM"
    assert llm.client_settings().urls == ("grpc://127.0.0.1:8001",)  # the one default URL (steerlm.client)
    other = SteerLM(model="nemo-v2.0", profile="NV-Llama2-70B-RLHF-Chat")
    assert other.resolved_profile.name == "NV-Llama2-70B-RLHF-Chat"
    assert other.client_settings().model == "nemo-v2.0"


def test_one_field_per_steering_attribute_of_every_profile() -> None:
    assert {*ATTRIBUTE_NAMES, "attributes"} <= set(SteerLM.model_fields)
    assert SteerLM(model=F1, verbosity=1, attributes={"humor": 2}).default_options()["verbosity"] == 1


async def test_clients_are_lazy_cached_per_settings_and_copies_start_fresh() -> None:
    llm = SteerLM(model=F1, url=CLOSED, verbosity=1)  # construction (and client creation) is offline
    client = llm._sync_client()
    assert llm._sync_client() is client
    assert llm.model_copy(update={"verbosity": 2})._sync_client() is client  # same settings, shared
    assert llm.model_copy(update={"url": "grpc://127.0.0.1:10"})._sync_client() is not client
    assert copy.deepcopy(llm)._sync_client() is not client
    assert pickle.loads(pickle.dumps(llm)).verbosity == 1
    aclient = await llm._async_client()
    assert await llm._async_client() is aclient and aclient is not client
    await llm.aclose()
    assert await llm._async_client() is not aclient
    llm.close()
    assert llm._sync_client() is not client


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model": "nemo-v2.0"}, "pass profile="),
        ({"model": F1, "verbosity": 7}, "from 0 to 4"),
        ({"model": F1, "violence": 1}, "unknown steering attribute"),
        ({"model": F1, "attributes": {"verbosity": -1}}, "from 0 to 4"),
        ({"model": "nemo-v2.0", "profile": "Llama3-70B-PPO-Chat", "humor": 1}, "no steering attributes"),
        ({"model": F1, "url": "localhost"}, "invalid server url"),
        ({"model": F1, "timeout": 0}, "timeout"),
        ({"model": F1, "max_retries": -1}, "max_retries"),
        ({"model": F1, "max_tokens": 0}, "max_tokens"),
        ({"model": F1, "temperature": -0.5}, "temperature"),
        ({"model": F1, "profile": "nope"}, "unknown model profile"),
        ({"model": F1, "tokenizer": "/does/not/exist.json"}, "does not exist"),
    ],
)
def test_invalid_configuration_raises_configuration_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        SteerLM(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"verbostiy": 1}, "unknown argument"),
        ({"verbosity": 9}, "from 0 to 4"),
        ({"context": 3}, "context must be a string"),
        ({"top_k": -1}, "top_k"),
    ],
)
async def test_invalid_per_call_options_raise_before_sending(kwargs: dict[str, Any], message: str) -> None:
    llm = offline()
    with pytest.raises(ConfigurationError, match=message):
        llm.chat(USER, **kwargs)
    with pytest.raises(ConfigurationError, match=message):
        await llm.acomplete("Hi", **kwargs)


def test_unrenderable_conversations_raise_before_sending() -> None:
    llm = offline()
    with pytest.raises(PromptError):
        llm.chat([ChatMessage(role="assistant", content="only me")])
    with pytest.raises(ConfigurationError, match="formatted=True"):
        llm.complete("x", formatted=True, context="c")
    with pytest.raises(ConfigurationError, match="formatted=True"):
        llm.complete("x", formatted=True, attributes={"humor": 1})


def test_fields_resolve_once_and_again_after_assignment_copy_or_pickle() -> None:
    llm = SteerLM(model=F1, url="grpc://127.0.0.1:1", verbosity=1)
    assert "verbosity:1" in llm._prepare_complete("hi", False, {}).prompt
    llm.verbosity = 3
    assert "verbosity:3" in llm._prepare_complete("hi", False, {}).prompt
    for other in (llm.model_copy(update={"verbosity": 0}), copy.deepcopy(llm), pickle.loads(pickle.dumps(llm))):
        expected = other.verbosity
        assert f"verbosity:{expected}" in other._prepare_complete("hi", False, {}).prompt


def test_context_window_override_feeds_the_metadata() -> None:
    from llamaindex_steerlm import SteerLM as _SteerLM
    from steerlm.errors import ConfigurationError as _ConfigurationError

    assert _SteerLM(model="Llama2-70B-SteerLM-Chat", context_window=2048).metadata.context_window == 2048
    assert _SteerLM(model="Llama2-70B-SteerLM-Chat").metadata.context_window == 4096
    with pytest.raises(_ConfigurationError, match="context_window"):
        _SteerLM(model="Llama2-70B-SteerLM-Chat", context_window=0)


def test_the_instrumentation_payload_follows_field_changes_and_copies() -> None:
    llm = SteerLM(model=F1, max_tokens=300)
    payload = llm.to_payload()
    assert payload == {"class_name": "SteerLM", **llm.metadata.model_dump()}
    payload["num_output"] = 1  # a listener editing its payload changes nothing for the next call
    assert llm.to_payload()["num_output"] == 300
    llm.max_tokens = 20
    assert llm.to_payload()["num_output"] == 20
    copied = llm.model_copy(update={"context_window": 1024})
    assert copied.to_payload()["context_window"] == 1024
    assert llm.to_payload()["context_window"] == 4096
    assert pickle.loads(pickle.dumps(llm)).to_payload() == llm.to_payload()
