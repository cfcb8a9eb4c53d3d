"""LangChain's standard integration suite (langchain-tests) for ChatSteerLM, against the real local
Triton server (`local_server`, scripted models) over gRPC.

The model under test is the decoupled ``Llama2-70B-SteerLM-Chat-streaming`` (so streams are real
streams) rendered with the ``Llama2-70B-SteerLM-Chat`` profile; usage metadata comes from a byte-level
BPE tokenizer trained in milliseconds (exact counts for that tokenizer). The model override tests
switch to ``nemo-v2.0`` per call (another NeMo deploy signature on the same server).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_tests.integration_tests import ChatModelIntegrationTests
from tokenizers import ByteLevelBPETokenizer

from langchain_steerlm import ChatSteerLM

_PARAMS: dict[str, Any] = {}
_CORPUS = ["The quick brown fox jumps over the lazy dog.", "<extra_id_1>User\nhello\n<extra_id_1>Assistant\n",
           "quality:4,toxicity:0,humor:0,creativity:0,helpfulness:4,correctness:4,coherence:4"]


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tokenizer = ByteLevelBPETokenizer()
    tokenizer.train_from_iterator(_CORPUS * 20, vocab_size=400, min_frequency=1, show_progress=False)
    path = tmp_path_factory.mktemp("tokenizer") / "tokenizer.json"
    tokenizer.save(str(path))
    return path


@pytest.fixture(autouse=True, scope="module")
def _point_at_local_server(local_server: Any, tiny_tokenizer: Path) -> None:
    _PARAMS.update(
        model="Llama2-70B-SteerLM-Chat-streaming",
        profile="Llama2-70B-SteerLM-Chat",
        url=local_server.grpc_url,
        tokenizer=str(tiny_tokenizer),
        max_tokens=24,
    )


class TestChatSteerLMStandard(ChatModelIntegrationTests):
    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ChatSteerLM

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return dict(_PARAMS)

    @property
    def model_override_value(self) -> str:
        return "nemo-v2.0"

    @property
    def supports_anthropic_inputs(self) -> bool:
        return True

    @property
    def enable_vcr_tests(self) -> bool:
        # test_stream_time: vcrpy records HTTP client libraries; this model streams over gRPC, so the cassette
        # stays empty and the test streams from the live local server (pytest-recording's `vcr` fixture).
        return True

    @property
    def supports_json_mode(self) -> bool:
        """json mode sends the schema as guided decoding where the server has it and asks for it by the
        prompted JSON protocol everywhere: this NeMo-signature model has no guided input, so the scripted
        model follows the prompted protocol (the fallback path)."""
        return True

    @pytest.mark.xfail(
        strict=True,
        reason="needs a real model's judgement: the scripted test model fills a string argument with words "
        "from the end of the user turn ('company'), it cannot pick the quoted Chinese name out of the "
        "sentence. Unicode arguments round-trip through the tool protocol byte for byte: "
        "test_langchain_tools.py::test_unicode_tool_arguments_round_trip.",
    )
    def test_unicode_tool_call_integration(self, model: BaseChatModel, *, tool_choice: str | None = None,
                                           force_tool_call: bool = True) -> None:
        super().test_unicode_tool_call_integration(model, tool_choice=tool_choice, force_tool_call=force_tool_call)
