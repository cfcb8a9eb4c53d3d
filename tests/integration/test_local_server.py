"""The local server against raw tritonclient: declared signatures, unary over HTTP and gRPC, decoupled
streaming, in-band and real errors, the request log, and stop / kill / restart on the same ports."""

from __future__ import annotations

import asyncio
import itertools
import json
import queue
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as grpcaio
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from steerlm.serve.backend import SamplingRequest
from steerlm_testing import LocalServer
from steerlm_testing.scripted import ScriptedBackend

CHAT = "Llama2-70B-SteerLM-Chat"
STREAMING = "Llama2-70B-SteerLM-Chat-streaming"
V2 = "nemo-v2.0"
LEGACY = "nemo-2310"

V2_INPUTS = {
    "prompts": "TYPE_STRING", "max_output_len": "TYPE_INT64", "top_k": "TYPE_INT64", "top_p": "TYPE_FP32",
    "temperature": "TYPE_FP32", "random_seed": "TYPE_INT64", "stop_words_list": "TYPE_STRING",
    "bad_words_list": "TYPE_STRING", "no_repeat_ngram_size": "TYPE_FP32", "task_id": "TYPE_STRING",
    "lora_uids": "TYPE_STRING",
}
FLAGS = {"output_context_logits": "TYPE_BOOL", "output_generation_logits": "TYPE_BOOL"}
EXPECTED_INPUTS = {
    CHAT: {**V2_INPUTS, **FLAGS},
    STREAMING: {**V2_INPUTS, **FLAGS},
    V2: V2_INPUTS,
    LEGACY: {"prompts": "TYPE_STRING", "max_output_token": "TYPE_INT64", "top_k": "TYPE_INT64",
             "top_p": "TYPE_FP32", "temperature": "TYPE_FP32", "stop_words_list": "TYPE_STRING"},
}
REQUIRED = {"prompts", "output_context_logits", "output_generation_logits"}


def expected_text(prompt: str, max_tokens: int) -> str:
    return ScriptedBackend().generate([prompt], SamplingRequest(max_tokens=max_tokens))[0]


def tensors(module: Any, prompts: list[str], **scalars: tuple[str, Any]) -> list[Any]:
    """`module.InferInput`s in NeMo's wire format: prompts and every scalar as ``[B, 1]``."""
    rows = len(prompts)
    arrays = {"prompts": ("BYTES", np.array([[p.encode()] for p in prompts], dtype=np.object_))}
    for name, (datatype, value) in scalars.items():
        dtype = {"INT64": np.int64, "FP32": np.float32, "BOOL": np.bool_, "BYTES": np.object_}[datatype]
        arrays[name] = (datatype, np.full((rows, 1), value, dtype=dtype))
    result = []
    for name, (datatype, array) in arrays.items():
        tensor = module.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        result.append(tensor)
    return result


NO_LOGITS = {"output_generation_logits": ("BOOL", False), "output_context_logits": ("BOOL", False)}


@pytest.fixture
def http(server: LocalServer) -> Iterator[httpclient.InferenceServerClient]:
    client = httpclient.InferenceServerClient(server.http_address, network_timeout=30.0)
    yield client
    client.close()


@pytest.fixture
def grpc(server: LocalServer) -> Iterator[grpcclient.InferenceServerClient]:
    client = grpcclient.InferenceServerClient(server.grpc_address)
    yield client
    client.close()


def stream(client: grpcclient.InferenceServerClient, model: str, inputs: list[Any],
           timeout: float = 15.0) -> tuple[list[str], list[bool], Exception | None]:
    """All responses of one decoupled call: texts, final flags, and the error if one came."""
    responses: queue.Queue[tuple[Any, Any]] = queue.Queue()
    client.start_stream(callback=lambda result, error: responses.put((result, error)))
    texts: list[str] = []
    finals: list[bool] = []
    error = None
    try:
        client.async_stream_infer(model, inputs, enable_empty_final_response=True)
        deadline = time.monotonic() + timeout
        while True:
            result, error = responses.get(timeout=max(0.1, deadline - time.monotonic()))
            if error is not None:
                break
            final = result.get_response().parameters["triton_final_response"].bool_param
            outputs = result.as_numpy("outputs")
            if outputs is not None:
                texts.append(outputs[0, 0].decode())
            finals.append(final)
            if final:
                break
    finally:
        client.stop_stream(cancel_requests=True)
    return texts, finals, error


# ----- signatures -----------------------------------------------------------------------------------
@pytest.mark.parametrize("model", list(EXPECTED_INPUTS))
def test_declared_signature(http: httpclient.InferenceServerClient, model: str) -> None:
    config = http.get_model_config(model)
    declared = {i["name"]: i["data_type"] for i in config["input"]}
    assert declared == EXPECTED_INPUTS[model]
    assert {i["name"] for i in config["input"] if not i.get("optional")} == REQUIRED & set(declared)
    assert all(i["dims"] == [-1] for i in config["input"])
    assert config["output"][0]["name"] == "outputs" and config["output"][0]["data_type"] == "TYPE_STRING"
    assert config["max_batch_size"] == 8 and "dynamic_batching" in config
    decoupled = config.get("model_transaction_policy", {}).get("decoupled", False)
    assert decoupled is (model == STREAMING)


def test_logits_flags_are_required(http: httpclient.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException, match="output_context_logits"):
        http.infer(CHAT, tensors(httpclient, ["hi"]))


# ----- unary ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_unary_batch(request: pytest.FixtureRequest, protocol: str) -> None:
    client = request.getfixturevalue(protocol)
    module = httpclient if protocol == "http" else grpcclient
    prompts = ["first prompt", "second prompt"]
    result = client.infer(CHAT, tensors(module, prompts, max_output_len=("INT64", 5), **NO_LOGITS))
    outputs = result.as_numpy("outputs")
    assert outputs.shape == (2, 1)
    assert [o.decode() for o in outputs[:, 0]] == [expected_text(p, 5) for p in prompts]


def test_absent_inputs_take_nemo_defaults(http: httpclient.InferenceServerClient) -> None:
    outputs = http.infer(V2, tensors(httpclient, ["[[echo]]"])).as_numpy("outputs")
    params = json.loads(outputs[0, 0])["params"]
    assert (params["max_tokens"], params["top_k"], params["top_p"], params["temperature"]) == (64, 1, 0.0, 1.0)


def test_legacy_max_output_token(http: httpclient.InferenceServerClient) -> None:
    outputs = http.infer(LEGACY, tensors(httpclient, ["old"], max_output_token=("INT64", 3)))
    assert outputs.as_numpy("outputs")[0, 0].decode() == expected_text("old", 3)


def test_in_band_error(http: httpclient.InferenceServerClient) -> None:
    outputs = http.infer(V2, tensors(httpclient, ["a [[error=bad things]]", "b"])).as_numpy("outputs")
    assert [o.decode() for o in outputs[:, 0]] == ["An error occurred: bad things"] * 2


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_raise_is_a_real_server_error(request: pytest.FixtureRequest, protocol: str) -> None:
    client = request.getfixturevalue(protocol)
    module = httpclient if protocol == "http" else grpcclient
    with pytest.raises(InferenceServerException, match="kaboom"):
        client.infer(V2, tensors(module, ["[[raise=kaboom]]"]))


def test_sleep_goes_past_a_client_timeout(grpc: grpcclient.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException, match="Deadline"):
        grpc.infer(V2, tensors(grpcclient, ["[[sleep=1]]"]), client_timeout=0.3)
    # the sleeping request still holds the model's one instance; the next call waits, then succeeds
    outputs = grpc.infer(V2, tensors(grpcclient, ["next"], max_output_len=("INT64", 2)), client_timeout=10)
    assert outputs.as_numpy("outputs")[0, 0].decode() == expected_text("next", 2)


# ----- request log ----------------------------------------------------------------------------------
def test_request_log_has_the_wire_content(server: LocalServer, http: httpclient.InferenceServerClient) -> None:
    prompt = "<extra_id_0>System\n\n<extra_id_1>User\nhé\n<extra_id_1>Assistant\n"
    http.infer(CHAT, tensors(httpclient, [prompt], max_output_len=("INT64", 4), top_p=("FP32", 0.5),
                             stop_words_list=("BYTES", b"<extra_id_1>"), **NO_LOGITS))
    entry = server.last_request(CHAT)
    inputs = entry["inputs"]
    assert inputs["prompts"] == {"datatype": "BYTES", "shape": [1, 1], "data": [prompt]}
    assert inputs["max_output_len"] == {"datatype": "INT64", "shape": [1, 1], "data": [4]}
    assert inputs["top_p"] == {"datatype": "FP32", "shape": [1, 1], "data": [0.5]}
    assert inputs["stop_words_list"]["data"] == ["<extra_id_1>"]
    assert inputs["output_context_logits"] == {"datatype": "BOOL", "shape": [1, 1], "data": [False]}
    assert len(server.requests()) == 1


# ----- streaming ------------------------------------------------------------------------------------
def test_streaming_is_cumulative_and_ends_with_empty_final(grpc: grpcclient.InferenceServerClient) -> None:
    prompt = "stream this [[delay=0.02]]"
    texts, finals, error = stream(grpc, STREAMING, tensors(grpcclient, [prompt], max_output_len=("INT64", 4),
                                                           **NO_LOGITS))
    assert error is None
    assert finals == [False] * 4 + [True]
    assert len(texts) == 4
    assert all(b.startswith(a) and len(b) > len(a) for a, b in itertools.pairwise(texts))
    assert texts[-1] == expected_text(prompt, 4)


def test_streaming_in_band_error(grpc: grpcclient.InferenceServerClient) -> None:
    texts, finals, error = stream(grpc, STREAMING, tensors(grpcclient, ["[[error=nope]]"], **NO_LOGITS))
    assert (texts, finals, error) == (["An error occurred: nope"], [False, True], None)


def test_unary_call_on_the_streaming_model_is_refused(http: httpclient.InferenceServerClient) -> None:
    with pytest.raises(InferenceServerException, match="decoupled"):
        http.infer(STREAMING, tensors(httpclient, ["x"], **NO_LOGITS))


# ----- lifecycle (its own small server, so the shared one is never disturbed) -----------------------
def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def live_group_members(pgid: int) -> list[int]:
    """Processes of a process group that are not zombies (this container's init may not reap them)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


async def aio_stream(address: str, prompt: str, max_tokens: int) -> list[str]:
    """One grpc.aio stream; it ends when the server completes the call (tritonclient's aio API
    cannot ask for PyTriton's empty final response: the parameter is reserved)."""
    client = grpcaio.InferenceServerClient(address)

    async def requests() -> AsyncIterator[dict[str, Any]]:
        yield {"model_name": STREAMING, "inputs": tensors(grpcclient, [prompt],
                                                          max_output_len=("INT64", max_tokens), **NO_LOGITS)}

    texts = []
    try:
        async for result, error in client.stream_infer(requests()):
            assert error is None
            texts.append(result.as_numpy("outputs")[0, 0].decode())
    finally:
        await client.close()
    return texts


def test_kill_mid_stream_then_restart_and_stop_on_the_same_ports(tmp_path: Path) -> None:
    def one_stream(server: LocalServer, prompt: str) -> tuple[list[str], Exception | None]:
        client = grpcclient.InferenceServerClient(server.grpc_address)
        try:
            texts, _, error = stream(client, STREAMING, tensors(
                grpcclient, [prompt], max_output_len=("INT64", 3), **NO_LOGITS))
        finally:
            client.close()
        return texts, error

    with LocalServer(preset="none", models=[f"{STREAMING}=current_streaming"], workdir=tmp_path,
                     extra_args=["--queue-delay-us", "50000"]) as server:
        ports = dict(server.ports)
        # concurrent streams merged by the dynamic batcher move in lockstep, each with its own length;
        # one that has finished repeats its text until the merged batch ends
        prompts = [(f"merged {n} [[delay=0.02]]", n) for n in (1, 2, 4)]

        async def merged() -> list[list[str]]:
            return list(await asyncio.gather(*(aio_stream(server.grpc_address, p, n) for p, n in prompts)))

        for (prompt, n), texts in zip(prompts, asyncio.run(merged()), strict=True):
            assert list(dict.fromkeys(texts)) == [expected_text(prompt, k) for k in range(1, n + 1)], texts

        texts, error = one_stream(server, "[[stream_fail_after=2]]")
        assert len(texts) == 2 and error is not None, (texts, error, server.log_tail())
        assert wait_until(lambda: not server.is_running(), 10.0)
        assert wait_until(lambda: live_group_members(server.pid or 0) == [], 10.0)

        server.restart()
        assert server.ports == ports and server.grpc_address.endswith(f":{ports['grpc']}")
        assert one_stream(server, "again") == ([expected_text("again", n) for n in (1, 2, 3)], None)
        assert [r["model"] for r in server.requests()] == [STREAMING] * 5  # 3 merged, killed, again

        pid = server.pid
        status = server.stop()
        assert status == 0, (status, server.log_tail())
        assert not server.is_running() and pid is not None
        assert live_group_members(pid) == []
