"""Secrets reach the server and nothing else: against the OpenAI-compatible double, which requires an API
key, a key given to the constructor, per call or through ``bind`` authenticates, while no callback payload,
repr or error message shows it (a spy handler records every payload)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler

from langchain_steerlm import ChatSteerLM, SteerLM
from llamaindex_steerlm import SteerLM as LlamaSteerLM
from steerlm.errors import AuthenticationError
from steerlm_testing.openai_double import OpenAIDouble

pytestmark = pytest.mark.integration

KEY = "sk-live-SECRET-51d2"
PROFILE = "Llama2-70B-SteerLM-Chat"
SAY = "[[say=authorized]]"


class Spy(BaseCallbackHandler):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("on_"):
            return lambda *args, **kwargs: self.seen.append(f"{name} {args!r} {kwargs!r}")
        return super().__getattribute__(name)


@pytest.fixture(scope="module")
def double() -> Iterator[OpenAIDouble]:
    with OpenAIDouble(api_key=KEY) as server:
        yield server


def _chat(double: OpenAIDouble, **kwargs: Any) -> ChatSteerLM:
    return ChatSteerLM(model=double.model, url=double.url, profile=PROFILE, max_retries=0, **kwargs)


def test_constructor_per_call_and_bound_keys_authenticate_and_stay_hidden(double: OpenAIDouble) -> None:
    spy = Spy()
    config = {"callbacks": [spy]}
    assert _chat(double, api_key=KEY).invoke(SAY, config=config).content == "authorized"
    assert _chat(double).invoke(SAY, config=config, api_key=KEY).content == "authorized"
    bound = _chat(double).bind(api_key=KEY)
    assert KEY not in repr(bound)
    assert bound.invoke(SAY, config=config).content == "authorized"
    headers = _chat(double).bind(headers={"authorization": f"Bearer {KEY}"})
    assert KEY not in repr(headers)
    assert headers.invoke(SAY, config=config).content == "authorized"
    llm = SteerLM(model=double.model, url=double.url, profile=PROFILE, max_retries=0)
    assert "".join(llm.stream(SAY, config=config, api_key=KEY)) == "authorized"
    assert asyncio.run(_chat(double).ainvoke(SAY, config=config, api_key=KEY)).content == "authorized"
    assert len(spy.seen) >= 12
    assert not [payload for payload in spy.seen if KEY in payload]


def test_a_wrong_key_is_refused_without_being_shown(double: OpenAIDouble) -> None:
    wrong = KEY[::-1]
    spy = Spy()
    with pytest.raises(AuthenticationError) as refused:
        _chat(double).invoke(SAY, config={"callbacks": [spy]}, api_key=wrong)
    assert wrong not in str(refused.value) and KEY not in str(refused.value)
    assert not [payload for payload in spy.seen if wrong in payload]


def test_llamaindex_key(double: OpenAIDouble) -> None:
    llm = LlamaSteerLM(model=double.model, url=double.url, profile=PROFILE, api_key=KEY, max_retries=0)
    assert llm.complete(SAY).text == "authorized"
    assert KEY not in repr(llm) and KEY not in llm.to_json()
