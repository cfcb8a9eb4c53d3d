"""Log-probabilities end to end through the core client, on every server that returns them, unary and streamed,
sync and async: NeMo Export-Deploy's Megatron deployable (``compute_logprob`` + ``n_top_logprobs`` ->
``log_probs`` + ``top_logprobs``) and vLLM exporter (``n_log_probs``), Triton's vLLM backend (``logprobs`` in
``sampling_parameters``, ``return_logprobs``) and an OpenAI-compatible server (``logprobs: N``). The servers'
scripted models report real log-probabilities of their own next-token distributions
(`steerlm.serve.token_stats.distribution`); the client must name each generated token, give its value and the
N likeliest alternatives, and hand a stream's entries out chunk by chunk. Servers that cannot return them
refuse with a ConfigurationError naming the ones that can."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from steerlm.client import AsyncSteerLMClient, SteerLMClient
from steerlm.errors import ConfigurationError
from steerlm.logprobs import TokenLogprob
from steerlm.params import GenerationParams
from steerlm.prompts import format_prompt
from steerlm.serve.token_stats import distribution
from steerlm_testing import LocalServer
from steerlm_testing.directives import tokenize
from steerlm_testing.openai_double import OpenAIDouble

pytestmark = [pytest.mark.timeout(180)]

PROFILE = "Llama2-70B-SteerLM-Chat"
SAY = "[[say=one two three\\n\\u003cextra_id_1>User\\nmore]]"
SPOKEN = tokenize("one two three\n<extra_id_1>")  # generated through the end-of-turn marker
TOP = 3


@pytest.fixture
def drive(sync_or_async: Any) -> Any:
    return sync_or_async


@pytest.fixture
def double() -> Iterator[OpenAIDouble]:
    with OpenAIDouble() as server:
        yield server


def prompt(text: str) -> str:
    return format_prompt([{"role": "user", "content": text}], profile=PROFILE)


def client(drive: Any, model: str, url: str) -> Any:
    cls = AsyncSteerLMClient if drive.mode == "async" else SteerLMClient
    return drive.track(cls(model, url, profile=PROFILE, max_retries=0, timeout=30, stream_timeout=10,
                           ready_timeout=5.0))


def stream(drive: Any, c: Any, text: str, params: GenerationParams) -> list[Any]:
    if drive.mode == "sync":
        return list(c.stream(text, params))

    async def collect() -> list[Any]:
        return [chunk async for chunk in c.stream(text, params)]

    return drive(collect())


def check(entries: Any, tokens: list[str], top: int) -> None:
    """Each entry: the generated token, its log-probability in the step's distribution, the `top` likeliest."""
    assert entries is not None and [e.token for e in entries] == tokens
    for entry in entries:
        expected = distribution(entry.token)
        assert entry.logprob == pytest.approx(expected[0][1], abs=1e-5)  # the scripted model's argmax
        assert [t for t, _ in entry.top] == [t for t, _ in expected[:top]]
        assert [v for _, v in entry.top] == pytest.approx([v for _, v in expected[:top]], abs=1e-5)
        assert entry.bytes == list(entry.token.encode("utf-8"))


def joined(chunks: list[Any]) -> list[TokenLogprob]:
    return [e for c in chunks for e in (c.logprobs or ())]


@pytest.mark.parametrize("model", ["megatron-deployable", "vllm-exporter"])
def test_export_deploy_names_tokens_and_lists_alternatives(drive: Any, current_server: LocalServer,
                                                           model: str) -> None:
    c = client(drive, model, current_server.grpc_url)
    done = drive(c.generate(prompt(SAY), GenerationParams(top_logprobs=TOP)))
    assert done.text == "one two three"
    check(done.logprobs, SPOKEN, TOP)
    inputs = current_server.last_request(model)["inputs"]
    if model == "megatron-deployable":
        assert inputs["compute_logprob"]["data"] == [True] and inputs["n_top_logprobs"]["data"] == [TOP]
    else:
        assert inputs["n_log_probs"]["data"] == [TOP]
    only = drive(c.generate(prompt(SAY), GenerationParams(logprobs=True)))
    check(only.logprobs, SPOKEN, 0)  # one listed token per position names it; no alternatives kept
    chunks = stream(drive, c, prompt(SAY), GenerationParams(top_logprobs=TOP))  # unary: one chunk
    assert [ch.text for ch in chunks] == ["one two three"] and chunks[-1].logprobs == done.logprobs


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_vllm_backend_unary_and_streamed(drive: Any, current_server: LocalServer, protocol: str) -> None:
    url = current_server.grpc_url if protocol == "grpc" else current_server.http_url
    c = client(drive, "vllm_model", url)
    done = drive(c.generate(prompt(SAY), GenerationParams(top_logprobs=TOP)))
    assert done.text == "one two three"
    check(done.logprobs, SPOKEN, TOP)  # the sampled token comes first in each position's dict
    sampling = json.loads(current_server.last_request("vllm_model")["inputs"]["sampling_parameters"]["data"][0])
    assert sampling["logprobs"] == TOP
    chunks = stream(drive, c, prompt(SAY), GenerationParams(top_logprobs=TOP))
    assert "".join(ch.text for ch in chunks) == "one two three"
    assert len([ch for ch in chunks if ch.logprobs]) > 1  # handed out as they arrive
    assert tuple(joined(chunks)) == done.logprobs


def test_openai_compatible_unary_and_streamed(drive: Any, double: OpenAIDouble) -> None:
    c = client(drive, double.model, double.url)
    turn = "[[say=Hello there.\\n\\u003cextra_id_1>User\\nmore]]"
    done = drive(c.generate(prompt(turn), GenerationParams(top_logprobs=2)))
    assert done.text == "Hello there." and double.completions()[-1].body["logprobs"] == 2
    check(done.logprobs, ["Hello ", "there.", "\n"], 2)  # vLLM leaves the stop out
    chunks = stream(drive, c, prompt(turn), GenerationParams(top_logprobs=2))
    assert [ch.logprobs is not None for ch in chunks[:2]] == [True, True]
    assert tuple(joined(chunks)) == done.logprobs
    plain = drive(c.generate(prompt(turn), GenerationParams(logprobs=True)))
    check(plain.logprobs, ["Hello ", "there.", "\n"], 0)
    assert double.completions()[-1].body["logprobs"] == 1


@pytest.mark.parametrize(("server", "model"), [("current", "hf-deployable"), ("ensemble", "ensemble"),
                                               ("ensemble", "ensemble-streaming")])
def test_servers_without_logprobs_refuse_clearly(drive: Any, current_server: LocalServer,
                                                  ensemble_server: LocalServer, server: str, model: str) -> None:
    url = (current_server if server == "current" else ensemble_server).grpc_url
    c = client(drive, model, url)
    for params in (GenerationParams(logprobs=True), GenerationParams(top_logprobs=2)):
        with pytest.raises(ConfigurationError, match=r"returns no log-probabilities.*vLLM backend.*OpenAI"):
            drive(c.generate(prompt(SAY), params))
        with pytest.raises(ConfigurationError, match="returns no log-probabilities"):
            stream(drive, c, prompt(SAY), params)
    assert drive(c.generate(prompt(SAY))).text == "one two three"  # nothing asked: served as before
