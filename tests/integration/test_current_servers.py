"""NeMo Export-Deploy (``prompts`` -> ``sentences``: Megatron, Hugging Face, vLLM exporter) and Triton's vLLM
backend end to end: the local server's reproductions of their signatures and the core client over gRPC and
HTTP, sync and async. Checks what went on the wire (request log: the exact SteerLM prompt, declared dtypes,
no chat template or echo asked, `[1]` tensors and the sampling JSON for vLLM), the answer cut at
``<extra_id_1>`` whether the client or the server cut it, server-reported usage and finish reason, log-probs,
batches (one request up to max_batch_size; N concurrent requests for vLLM) and in-band errors."""

from __future__ import annotations

import json
import queue
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from steerlm.client import AsyncSteerLMClient, SteerLMClient
from steerlm.errors import InvalidRequestError
from steerlm.params import GenerationParams
from steerlm.prompts import format_prompt
from steerlm.serve.token_stats import token_logprob
from steerlm.usage import TokenUsage
from steerlm_testing import LocalServer
from steerlm_testing.directives import tokenize

pytestmark = [pytest.mark.timeout(180)]

PROFILE = "Llama2-70B-SteerLM-Chat"
EXPORT_DEPLOY = ("megatron-deployable", "hf-deployable", "vllm-exporter")
VLLM = "vllm_model"
SAY = "[[say=one two three\\n\\u003cextra_id_1>User\\nmore]]"
SPOKEN = tokenize("one two three\n<extra_id_1>")  # what the model generates before it ends its turn
LENGTH = {"megatron-deployable": "max_length", "hf-deployable": "max_length", "vllm-exporter": "max_tokens"}
SEED = {"megatron-deployable": "random_seed", "hf-deployable": "random_seed", "vllm-exporter": "seed"}


@pytest.fixture
def server(current_server: LocalServer) -> LocalServer:
    return current_server


@pytest.fixture
def drive(sync_or_async: Any) -> Any:
    return sync_or_async


def client(drive: Any, model: str, url: str, **kwargs: Any) -> Any:
    cls = AsyncSteerLMClient if drive.mode == "async" else SteerLMClient
    return drive.track(cls(model, url, profile=PROFILE, max_retries=0, timeout=30, **kwargs))


def prompt(text: str) -> str:
    return format_prompt([{"role": "user", "content": text}], profile=PROFILE)


def url_of(server: LocalServer, protocol: str) -> str:
    return server.grpc_url if protocol == "grpc" else server.http_url


def stream(drive: Any, c: Any, text: str, params: GenerationParams | None = None) -> list[Any]:
    if drive.mode == "sync":
        return list(c.stream(text, params))

    async def collect() -> list[Any]:
        return [chunk async for chunk in c.stream(text, params)]

    return drive(collect())


# ---------------------------------------------------------------------------------------------- Export-Deploy
@pytest.mark.parametrize("protocol", ["grpc", "http"])
@pytest.mark.parametrize("model", EXPORT_DEPLOY)
def test_export_deploy_gets_the_prompt_and_declared_dtypes_and_the_client_cuts(
        drive: Any, server: LocalServer, model: str, protocol: str) -> None:
    params = GenerationParams(max_tokens=16, top_k=2, top_p=0.5, temperature=0.7, seed=7)
    done = drive(client(drive, model, url_of(server, protocol)).generate(prompt(SAY), params))
    assert (done.text, done.finish_reason, done.usage) == ("one two three", "stop", None)
    inputs = server.last_request(model)["inputs"]
    assert inputs["prompts"]["data"] == [prompt(SAY)] and inputs["prompts"]["shape"] == [1, 1]
    expected = {"prompts": "BYTES", LENGTH[model]: "INT64", "top_k": "INT64", "top_p": "FP32",
                "temperature": "FP32", SEED[model]: "INT64"}
    if model == "megatron-deployable":
        expected.update(apply_chat_template="BOOL", echo="BOOL")
        assert inputs["apply_chat_template"]["data"] == [False] and inputs["echo"]["data"] == [False]
    assert {k: v["datatype"] for k, v in inputs.items()} == expected  # no stop words: these servers take none
    assert inputs[LENGTH[model]]["data"] == [16] and inputs[SEED[model]]["data"] == [7]


@pytest.mark.parametrize("model", EXPORT_DEPLOY)
def test_export_deploy_batch_is_one_request_up_to_max_batch_size(drive: Any, server: LocalServer, model: str) -> None:
    prompts = [prompt(f"[[say=answer {i}\\n\\u003cextra_id_1>]]") for i in range(11)]
    results = drive(client(drive, model, server.grpc_url).batch(prompts, GenerationParams(max_tokens=8)))
    assert [r.text for r in results] == [f"answer {i}" for i in range(11)]
    assert sorted(e["inputs"]["prompts"]["shape"][0] for e in server.requests(model)) == [3, 8]


@pytest.mark.parametrize("model", ["megatron-deployable", "vllm-exporter"])
def test_export_deploy_returns_log_probs_when_asked(drive: Any, server: LocalServer, model: str) -> None:
    done = drive(client(drive, model, server.grpc_url).generate(prompt(SAY), GenerationParams(logprobs=True)))
    assert done.text == "one two three"
    assert done.logprobs is not None and [e.token for e in done.logprobs] == SPOKEN  # every generated token
    assert [e.logprob for e in done.logprobs] == pytest.approx([token_logprob(t) for t in SPOKEN], abs=1e-6)
    inputs = server.last_request(model)["inputs"]
    assert inputs.get("compute_logprob", inputs.get("n_log_probs"))["data"] in ([True], [1])
    plain = drive(client(drive, model, server.grpc_url).generate(prompt(SAY)))
    assert plain.logprobs is None
    assert not {"compute_logprob", "n_top_logprobs", "n_log_probs"} & set(server.last_request(model)["inputs"])


@pytest.mark.parametrize(("model", "in_band"), [("hf-deployable", True), ("vllm-exporter", True),
                                                 ("megatron-deployable", False)])
def test_export_deploy_errors(drive: Any, server: LocalServer, model: str, in_band: bool) -> None:
    """HF and the vLLM exporter answer failures in-band (one row for the whole batch); Megatron fails the call."""
    c = client(drive, model, server.grpc_url)
    with pytest.raises(InvalidRequestError, match="boom") as info:
        drive(c.batch([prompt("[[error=boom]]"), prompt("fine")]))
    assert (info.value.status == "in-band") is in_band


# ---------------------------------------------------------------------------------------------- vLLM backend
@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_vllm_backend_sends_unbatched_tensors_and_the_server_cuts(drive: Any, server: LocalServer,
                                                                 protocol: str) -> None:
    c = client(drive, VLLM, url_of(server, protocol))
    done = drive(c.generate(prompt(SAY), GenerationParams(max_tokens=16, temperature=0.2, seed=3)))
    cut_by_client = drive(client(drive, "megatron-deployable", url_of(server, protocol)).generate(prompt(SAY)))
    assert done.text == cut_by_client.text == "one two three" and done.finish_reason == "stop"
    assert done.usage == TokenUsage(len(prompt(SAY).split()), len(SPOKEN))  # counted by the server
    inputs = server.last_request(VLLM)["inputs"]
    assert inputs["text_input"] == {"datatype": "BYTES", "shape": [1], "data": [prompt(SAY)]}
    assert all(v["shape"] == [1] for v in inputs.values())
    assert json.loads(inputs["sampling_parameters"]["data"][0]) == {
        "max_tokens": 16, "temperature": 0.2, "seed": 3, "stop": ["<extra_id_1>"]}
    flags = {k: v["data"] for k, v in inputs.items() if k not in ("text_input", "sampling_parameters")}
    assert flags == {"stream": [False], "exclude_input_in_output": [True], "return_finish_reason": [True],
                     "return_num_input_tokens": [True], "return_num_output_tokens": [True]}


def test_vllm_backend_server_output_excludes_the_stop_and_keeps_the_newline(
        request: pytest.FixtureRequest, server: LocalServer) -> None:
    """What the client cleans: the raw reply stops before ``<extra_id_1>`` and keeps the turn's newline."""
    inputs = []
    for name, dtype, value in (("text_input", "BYTES", np.array([prompt(SAY).encode()], dtype=np.object_)),
                               ("sampling_parameters", "BYTES", np.array([b'{"stop": ["<extra_id_1>"]}'],
                                                                         dtype=np.object_)),
                               ("exclude_input_in_output", "BOOL", np.array([True])),
                               ("return_finish_reason", "BOOL", np.array([True]))):
        tensor = grpcclient.InferInput(name, [1], dtype)
        tensor.set_data_from_numpy(value)
        inputs.append(tensor)
    raw = grpcclient.InferenceServerClient(server.grpc_address)
    request.addfinalizer(raw.close)
    with pytest.raises(Exception, match="decoupled"):  # always decoupled: a unary infer is refused
        raw.infer(VLLM, inputs)
    responses: queue.Queue[Any] = queue.Queue()
    raw.start_stream(callback=lambda result, error: responses.put((result, error)))
    raw.async_stream_infer(VLLM, inputs)
    result, error = responses.get(timeout=20)
    raw.stop_stream()
    assert error is None and result.get_response().parameters["triton_final_response"].bool_param
    assert result.as_numpy("text_output").tolist() == [b"one two three\n"]
    assert result.as_numpy("finish_reason").tolist() == [b"stop"]
    with SteerLMClient(VLLM, server.grpc_url, profile=PROFILE) as ours:
        assert ours.generate(prompt(SAY)).text == "one two three"


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_vllm_backend_streams_deltas_with_usage_on_the_last_chunk(drive: Any, server: LocalServer,
                                                                 protocol: str) -> None:
    c = client(drive, VLLM, url_of(server, protocol), stream_timeout=10)
    chunks = stream(drive, c, prompt(SAY), GenerationParams(max_tokens=16))
    whole = drive(c.generate(prompt(SAY), GenerationParams(max_tokens=16)))
    assert "".join(ch.text for ch in chunks) == whole.text == "one two three"
    assert len([ch for ch in chunks if ch.text]) > 1  # really streamed
    assert chunks[-1].finish_reason == "stop" and chunks[-1].usage == whole.usage == TokenUsage(
        len(prompt(SAY).split()), len(SPOKEN))
    assert all(ch.finish_reason is None and ch.usage is None for ch in chunks[:-1])
    streamed = [e for e in server.requests(VLLM) if e["inputs"]["stream"]["data"] == [True]]
    assert len(streamed) == 1 and streamed[0]["inputs"]["exclude_input_in_output"]["data"] == [True]


def test_vllm_backend_length_caller_stops_and_logprobs(drive: Any, server: LocalServer) -> None:
    c = client(drive, VLLM, server.grpc_url)
    short = drive(c.generate(prompt(SAY), GenerationParams(max_tokens=2)))
    assert (short.text, short.finish_reason, short.usage.output_tokens) == ("one two ", "length", 2)  # type: ignore[union-attr]
    cut = drive(c.generate(prompt(SAY), GenerationParams(stop=("three",), logprobs=True)))
    assert (cut.text, cut.finish_reason) == ("one two ", "stop")
    assert json.loads(server.last_request(VLLM)["inputs"]["sampling_parameters"]["data"][0])["stop"] == [
        "<extra_id_1>", "three"]
    assert [e.logprob for e in cut.logprobs or ()] == pytest.approx(
        [token_logprob(t) for t in tokenize("one two three")], abs=1e-6)


def test_vllm_backend_batch_is_concurrent_single_prompt_requests(drive: Any, server: LocalServer) -> None:
    prompts = [prompt(f"[[say=answer {i}\\n\\u003cextra_id_1>]]") for i in range(5)]
    results = drive(client(drive, VLLM, server.grpc_url).batch(prompts))
    assert [r.text for r in results] == [f"answer {i}" for i in range(5)]
    assert all(r.usage is not None and r.usage.output_tokens == 4 for r in results)
    logged = server.requests(VLLM)
    assert sorted(e["inputs"]["text_input"]["data"][0] for e in logged) == sorted(prompts)
    assert all(e["inputs"]["text_input"]["shape"] == [1] for e in logged)
