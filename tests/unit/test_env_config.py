"""STEERLM_URL / STEERLM_API_KEY / STEERLM_MODEL configure both adapters; explicit arguments win."""

from __future__ import annotations

import pytest

from langchain_steerlm import ChatSteerLM
from llamaindex_steerlm import SteerLM


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEERLM_URL", "grpc://127.0.0.1:9")
    monkeypatch.setenv("STEERLM_API_KEY", "env-secret")
    monkeypatch.setenv("STEERLM_MODEL", "Llama2-70B-SteerLM-Chat")


@pytest.mark.usefixtures("env")
@pytest.mark.parametrize("cls", [ChatSteerLM, SteerLM])
def test_environment_fills_url_key_and_model(cls: type) -> None:
    adapter = cls()
    assert (adapter.url, adapter.model) == ("grpc://127.0.0.1:9", "Llama2-70B-SteerLM-Chat")
    key = adapter.api_key
    assert (key.get_secret_value() if hasattr(key, "get_secret_value") else key) == "env-secret"
    assert "env-secret" not in repr(adapter)
    explicit = cls(url="http://127.0.0.1:9", model="nemo-v2.0", profile="Llama2-70B-SteerLM-Chat")
    assert (explicit.url, explicit.model) == ("http://127.0.0.1:9", "nemo-v2.0")
