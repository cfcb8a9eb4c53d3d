"""The TensorRT-LLM ``ensemble`` signature end to end: the local server's variants (INT32, UINT32 v0.6,
v0.5 with required word lists, decoupled twins) and C's client codec over gRPC and HTTP, sync and async.
Covers dtypes taken from metadata, stop words one per word, prompt echo, delta streaming ending on the
final flag carried by the last data response (and on PyTriton's empty final response), errors."""

from __future__ import annotations

import queue
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from steerlm.client import AsyncSteerLMClient, SteerLMClient
from steerlm.errors import ConfigurationError, InvalidRequestError
from steerlm.params import GenerationParams
from steerlm.prompts import format_prompt
from steerlm.serve.ensemble import NOT_DECOUPLED_MESSAGE
from steerlm_testing import LocalServer

pytestmark = [pytest.mark.timeout(180)]

PROFILE = "Llama2-70B-SteerLM-Chat"
SAY = "[[say=one two three\\n\\u003cextra_id_1>User\\nmore]]"
UNARY = ("ensemble", "ensemble-uint32", "ensemble-v0.5")
STREAMING = ("ensemble-streaming", "ensemble-uint32-streaming", "ensemble-streaming-empty-final")
INT_TYPE = {"ensemble": "INT32", "ensemble-uint32": "UINT32", "ensemble-v0.5": "UINT32",
            "ensemble-streaming": "INT32", "ensemble-uint32-streaming": "UINT32",
            "ensemble-streaming-empty-final": "INT32"}


@pytest.fixture
def server(ensemble_server: LocalServer) -> LocalServer:
    return ensemble_server


@pytest.fixture
def drive(sync_or_async: Any) -> Any:
    return sync_or_async


def client(drive: Any, model: str, url: str, **kwargs: Any) -> Any:
    cls = AsyncSteerLMClient if drive.mode == "async" else SteerLMClient
    return drive.track(cls(model, url, profile=PROFILE, max_retries=0, timeout=20, **kwargs))


def prompt(text: str) -> str:
    return format_prompt([{"role": "user", "content": text}], profile=PROFILE)


def stream(drive: Any, c: Any, text: str, params: GenerationParams | None = None) -> list[Any]:
    if drive.mode == "sync":
        return list(c.stream(text, params))

    async def collect() -> list[Any]:
        return [chunk async for chunk in c.stream(text, params)]

    return drive(collect())


@pytest.mark.parametrize("protocol", ["grpc", "http"])
@pytest.mark.parametrize("model", UNARY)
def test_unary_variants_get_their_declared_dtypes(drive: Any, server: LocalServer, model: str,
                                                  protocol: str) -> None:
    url = server.grpc_url if protocol == "grpc" else server.http_url
    params = GenerationParams(max_tokens=16, top_k=2, top_p=0.5, temperature=0.7, seed=7, stop=("three",))
    done = drive(client(drive, model, url).generate(prompt(SAY), params))
    assert done.text == "one two " and done.finish_reason == "stop"  # echo stripped, stop cut client side
    inputs = server.last_request(model)["inputs"]
    assert {k: v["datatype"] for k, v in inputs.items()} == {
        "text_input": "BYTES", "max_tokens": INT_TYPE[model], "top_k": INT_TYPE[model], "top_p": "FP32",
        "temperature": "FP32", "random_seed": "UINT64", "stop_words": "BYTES", "stream": "BOOL",
        **({"bad_words": "BYTES"} if model == "ensemble-v0.5" else {})}
    assert inputs["stop_words"]["shape"] == [1, 2] and inputs["stop_words"]["data"] == ["<extra_id_1>", "three"]
    assert inputs["text_input"]["data"] == [prompt(SAY)] and inputs["stream"]["data"] == [False]
    assert inputs["max_tokens"]["data"] == [16] and inputs["random_seed"]["data"] == [7]


def test_the_server_echoes_the_prompt_and_the_client_strips_it(server: LocalServer) -> None:
    text = grpcclient.InferInput("text_input", [1, 1], "BYTES")
    text.set_data_from_numpy(np.array([[b"Q? [[say=A.]]"]], dtype=np.object_))
    limit = grpcclient.InferInput("max_tokens", [1, 1], "INT32")
    limit.set_data_from_numpy(np.array([[8]], dtype=np.int32))
    with grpcclient.InferenceServerClient(server.grpc_address) as raw:
        answer = raw.infer("ensemble", [text, limit]).as_numpy("text_output")
    assert answer.shape == (1,) and answer[0] == b"Q? [[say=A.]]A."  # flat, like TRT-LLM's postprocessing
    with SteerLMClient("ensemble", server.grpc_url, profile=PROFILE) as ours:
        assert ours.generate(prompt("[[say=A.]]")).text == "A."


def test_batches_keep_order(drive: Any, server: LocalServer) -> None:
    prompts = [prompt(f"[[say=answer {i}]]") for i in range(11)]
    results = drive(client(drive, "ensemble", server.grpc_url).batch(prompts, GenerationParams(max_tokens=4)))
    assert [r.text for r in results] == [f"answer {i}" for i in range(11)]
    assert sorted(e["inputs"]["text_input"]["shape"][0] for e in server.requests("ensemble")) == [3, 8]


@pytest.mark.parametrize("protocol", ["grpc", "http"])
@pytest.mark.parametrize("model", STREAMING)
def test_decoupled_streams_deltas_and_ends(drive: Any, server: LocalServer, model: str, protocol: str) -> None:
    c = client(drive, model, server.grpc_url if protocol == "grpc" else server.http_url, stream_timeout=5)
    chunks = stream(drive, c, prompt("[[say=alpha beta gamma delta]]"), GenerationParams(max_tokens=16))
    assert [ch.text for ch in chunks if ch.text] == ["alpha ", "beta ", "gamma ", "delta"]
    assert chunks[-1].finish_reason == "length" and all(ch.finish_reason is None for ch in chunks[:-1])
    assert server.last_request(model)["inputs"]["stream"]["data"] == [True]
    assert server.last_request(model)["inputs"]["max_tokens"]["datatype"] == INT_TYPE[model]
    whole = drive(c.generate(prompt(SAY), GenerationParams(max_tokens=16)))
    assert whole.text == "one two three" and whole.finish_reason == "stop"  # one whole answer, echo stripped
    assert server.last_request(model)["inputs"]["stream"]["data"] == [False]


@pytest.mark.parametrize(("model", "final_with_data"), [("ensemble-streaming", True),
                                                        ("ensemble-streaming-empty-final", False)])
def test_final_flag_rides_on_the_last_data_response(request: pytest.FixtureRequest, server: LocalServer, model: str,
                                                    final_with_data: bool) -> None:
    raw = grpcclient.InferenceServerClient(server.grpc_address)
    request.addfinalizer(raw.close)
    responses: queue.Queue[Any] = queue.Queue()
    raw.start_stream(callback=lambda result, error: responses.put((result, error)))
    inputs = []
    for name, dtype, value in (("text_input", "BYTES", np.array([[b"[[say=x y]]"]], dtype=np.object_)),
                               ("max_tokens", "INT32", np.array([[4]], dtype=np.int32)),
                               ("stream", "BOOL", np.array([[True]]))):
        tensor = grpcclient.InferInput(name, [1, 1], dtype)
        tensor.set_data_from_numpy(value)
        inputs.append(tensor)
    raw.async_stream_infer(model, inputs, enable_empty_final_response=True)
    seen = []
    while True:
        result, error = responses.get(timeout=10)
        assert error is None
        final = result.get_response().parameters["triton_final_response"].bool_param
        text = result.as_numpy("text_output")
        seen.append((None if text is None else text.tolist(), final))
        if final:
            break
    raw.stop_stream()
    if final_with_data:
        assert seen == [([b"x "], False), ([b"y"], True)]
    else:
        assert seen == [([b"x "], False), ([b"y"], False), (None, True)]


def test_errors(drive: Any, server: LocalServer) -> None:
    with pytest.raises(InvalidRequestError, match="boom"):
        drive(client(drive, "ensemble", server.http_url).generate(prompt("[[error=boom]]")))
    with pytest.raises(InvalidRequestError, match="boom"):
        stream(drive, client(drive, "ensemble-streaming", server.grpc_url), prompt("[[error=boom]]"))
    with pytest.raises(InvalidRequestError, match="boom"):  # decoupled over HTTP: generate_stream's error
        drive(client(drive, "ensemble-streaming", server.http_url).generate(prompt("[[error=boom]]")))
    with pytest.raises(ConfigurationError, match=r"text_input.*text_output"):  # forced signature, wrong model
        drive(client(drive, "ensemble", server.http_url, signature="nemo_deploy").generate(prompt("hi")))


def test_stream_true_on_the_unary_model_fails_like_trtllm(server: LocalServer) -> None:
    inputs = []
    for name, dtype, value in (("text_input", "BYTES", np.array([[b"hi"]], dtype=np.object_)),
                               ("max_tokens", "INT32", np.array([[4]], dtype=np.int32)),
                               ("stream", "BOOL", np.array([[True]]))):
        tensor = grpcclient.InferInput(name, [1, 1], dtype)
        tensor.set_data_from_numpy(value)
        inputs.append(tensor)
    with grpcclient.InferenceServerClient(server.grpc_address) as raw, \
            pytest.raises(Exception, match=NOT_DECOUPLED_MESSAGE.replace(".", r"\.")):
        raw.infer("ensemble", inputs)
    with SteerLMClient("ensemble", server.grpc_url, profile=PROFILE) as ours:
        chunks = list(ours.stream(prompt("[[say=one]]")))
    assert [c.text for c in chunks] == ["one"]  # our client asks a unary model for one whole answer
