"""LangChain's standard unit suite (langchain-tests) for ChatSteerLM: construction without network."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_tests.unit_tests import ChatModelUnitTests

from langchain_steerlm import ChatSteerLM


class TestChatSteerLMUnit(ChatModelUnitTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ChatSteerLM

    @property
    def chat_model_params(self) -> dict[str, Any]:
        # Nothing listens on port 9: construction must not connect.
        return {"model": "Llama2-70B-SteerLM-Chat", "url": "grpc://127.0.0.1:9", "verbosity": 2}
