"""No secret (api_key, credential headers, client key) in any message, repr, serialization, log record
or callback payload — checked with a spy callback handler that records every payload it is given."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.load import dumpd, dumps
from pydantic import SecretStr

from langchain_steerlm import ChatSteerLM, SteerLM
from llamaindex_steerlm import SteerLM as LlamaSteerLM
from steerlm.errors import ConfigurationError, SteerLMError
from steerlm.secrets import auth_headers, check_headers, is_secret_header, redact_headers

SECRET = "sk-SECRET-7f3a9c"
DEAD_URL = "grpc://127.0.0.1:9"  # nothing listens: every call fails fast (ready_timeout=0, no retries)
FAST_FAIL = {"max_retries": 0, "client_kwargs": {"ready_timeout": 0.0}}


class Spy(BaseCallbackHandler):
    """Records the repr of every callback's arguments."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("on_"):
            return lambda *args, **kwargs: self.seen.append(f"{name} {args!r} {kwargs!r}")
        return super().__getattribute__(name)


class AsyncSpy(AsyncCallbackHandler):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("on_"):
            async def record(*args: Any, **kwargs: Any) -> None:
                self.seen.append(f"{name} {args!r} {kwargs!r}")
            return record
        return super().__getattribute__(name)


def _assert_clean(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text, text[:400]


@pytest.mark.parametrize("cls", [ChatSteerLM, SteerLM])
def test_langchain_repr_dumpd_and_callbacks_show_no_secret(cls: type[Any], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    model = cls(url=DEAD_URL, api_key=SECRET, headers={"authorization": f"Bearer {SECRET}", "x-team": "rag",
                                                        "triton-access-token": SECRET}, **FAST_FAIL)
    assert "'authorization': '***'" in repr(model) and "'x-team': 'rag'" in repr(model)
    assert model.lc_secrets["api_key"] == "STEERLM_API_KEY"
    spy = Spy()
    with pytest.raises(SteerLMError) as failed:
        model.invoke("hi", config={"callbacks": [spy]}, api_key=SECRET,
                     headers={"authorization": f"Bearer {SECRET}", "cookie": SECRET})
    stream_spy = Spy()
    with pytest.raises(SteerLMError):
        list(model.stream("hi", config={"callbacks": [stream_spy]}, api_key=SECRET,
                          headers={"x-api-key": SECRET}))
    assert spy.seen and stream_spy.seen
    _assert_clean(repr(model), str(model), json.dumps(dumpd(model)), dumps(model), str(model.model_dump()),
                  model.model_dump_json(), *spy.seen, *stream_spy.seen, str(failed.value), caplog.text)


async def test_langchain_async_callbacks_show_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    model = ChatSteerLM(url=DEAD_URL, api_key=SECRET, **FAST_FAIL)
    spy = AsyncSpy()
    with pytest.raises(SteerLMError) as failed:
        await model.ainvoke("hi", config={"callbacks": [spy]}, api_key=SecretStr(SECRET),
                            headers={"proxy-authorization": SECRET})
    assert spy.seen
    _assert_clean(*spy.seen, str(failed.value), caplog.text)


def test_llamaindex_repr_and_serialization_show_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    llm = LlamaSteerLM(model="Llama2-70B-SteerLM-Chat", url=DEAD_URL, api_key=SECRET,
                       headers={"Authorization": f"Bearer {SECRET}"}, max_retries=0,
                       client_kwargs={"ready_timeout": 0.0})
    assert llm.api_key is not None and llm.api_key.get_secret_value() == SECRET
    assert llm.to_dict()["headers"] == {"Authorization": "***"}
    assert "api_key" not in llm.to_dict()
    with pytest.raises(SteerLMError) as failed:
        llm.complete("hi")
    _assert_clean(repr(llm), str(llm), json.dumps(llm.to_dict()), llm.to_json(), str(failed.value), caplog.text)
    # the key still reaches the client, as the authorization header
    assert llm.client_settings().headers["authorization"] == f"Bearer {SECRET}"


@pytest.mark.parametrize("build", [
    lambda key: ChatSteerLM(api_key=key),
    lambda key: SteerLM(api_key=key),
    lambda key: LlamaSteerLM(model="Llama2-70B-SteerLM-Chat", api_key=key),
    lambda key: LlamaSteerLM(model="Llama2-70B-SteerLM-Chat", headers={"authorization": f"Bearer {key}"}),
    lambda key: ChatSteerLM(headers={"x-api-key": key}),
])
@pytest.mark.parametrize("suffix", ["\n", "\r\n", "\u00e9", "\x00"])
def test_a_bad_key_is_refused_without_echoing_it(build: Any, suffix: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        build(SECRET + suffix)
    message = str(refused.value)
    assert SECRET not in message
    assert not suffix.strip() or suffix not in message
    assert "position" in message or "line break" in message


def test_core_client_checks_headers_at_construction() -> None:
    from steerlm import SteerLMClient

    with pytest.raises(ConfigurationError, match="line break at the end") as bad:
        SteerLMClient("m", "grpc://127.0.0.1:9", headers={"authorization": f"Bearer {SECRET}\n"})
    assert SECRET not in str(bad.value)
    with pytest.raises(ConfigurationError, match="header name"):
        SteerLMClient("m", "grpc://127.0.0.1:9", headers={"Bad Name": "x"})
    with pytest.raises(ConfigurationError, match="must be a dict"):
        SteerLMClient("m", "grpc://127.0.0.1:9", headers="x")  # type: ignore[arg-type]
    client = SteerLMClient("m", "grpc://127.0.0.1:9", headers={"authorization": SECRET})
    assert SECRET not in repr(client.settings) and SECRET not in repr(client)
    client.close()


def test_header_helpers() -> None:
    assert all(is_secret_header(h) for h in ("Authorization", "proxy-authorization", "Cookie", "x-api-key",
                                             "api-key", "triton-access-token", "X-Auth-Token", "client-secret"))
    assert not any(is_secret_header(h) for h in ("x-team", "content-type", "x-request-id"))
    assert redact_headers({"authorization": SECRET, "x-team": "a"}) == {"authorization": "***", "x-team": "a"}
    assert check_headers({"x-team": "a b\tc"}) == {"x-team": "a b\tc"}
    assert auth_headers(None, SECRET) == {"authorization": f"Bearer {SECRET}"}
    assert auth_headers({"Authorization": "Basic x"}, SECRET) == {"Authorization": "Basic x"}
    with pytest.raises(ConfigurationError, match="empty"):
        auth_headers(None, "  ")
