"""Legacy NeMo REST transport without a server: URLs, the JSON body, replies and error mapping, and the
test double's validation rules (NeMo's exact strings)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from steerlm.client.core import ClientCore
from steerlm.client.settings import ClientSettings
from steerlm.errors import (
    ConfigurationError,
    InvalidRequestError,
    ServerOverloadedError,
    ServerUnavailableError,
    classify,
)
from steerlm.params import GenerationParams
from steerlm.prompts import format_prompt
from steerlm.transport.base import spec_from_config
from steerlm.transport.rest import REST_CONFIG, NemoRestCodec, RestStatusError, parse_reply, request_body
from steerlm.transport.urls import parse_url

PROFILE = "SteerLM-Llama2-13B"


def core() -> ClientCore:
    client = ClientCore(ClientSettings(PROFILE, "nemo-rest://127.0.0.1:5555", timeout=5.0, max_retries=0))
    client.install({**REST_CONFIG, "name": PROFILE})
    return client


def test_urls() -> None:
    endpoint = parse_url("nemo-rest://localhost:1427")
    assert (endpoint.protocol, endpoint.address, endpoint.ssl) == ("rest", "localhost:1427", False)
    assert parse_url("nemo-rests://host/base").address == "host:443/base"
    with pytest.raises(ConfigurationError, match="nemo-rest://host:port"):
        parse_url("rest://host:1")


def test_codec_is_detected_and_the_body_is_nemo_json() -> None:
    client = core()
    assert isinstance(client.codec, NemoRestCodec) and client.spec is not None
    assert client.spec.max_batch_size == 128 and not client.spec.decoupled
    prompt = format_prompt([{"role": "user", "content": "Hi"}], profile=PROFILE)
    params = GenerationParams(max_tokens=32, top_k=1, top_p=0.9, temperature=0.7, seed=5, repetition_penalty=1.1,
                              stop=("###",))
    [request] = client.plan([prompt, prompt + "x"], params, stream=False)
    body = request_body(request.wire)
    assert body == {"sentences": [prompt, prompt + "x"], "tokens_to_generate": 32, "top_k": 1, "top_p": 0.9,
                    "temperature": 0.7, "random_seed": 5, "repetition_penalty": 1.1,
                    "end_strings": ["<extra_id_1>", "quality:", "###"], "greedy": True}
    assert json.loads(json.dumps(body)) == body  # plain JSON types, exact floats (FP64 declared)


def test_temperature_zero_means_greedy_and_defaults_stay_unsent() -> None:
    client = core()
    body = request_body(client.plan(["p"], GenerationParams(temperature=0.0), stream=False)[0].wire)
    assert body == {"sentences": ["p"], "greedy": True, "end_strings": ["<extra_id_1>", "quality:"]}


def test_batches_split_at_128_sentences() -> None:
    plans = core().plan([f"p{i}" for i in range(130)], GenerationParams(), stream=False)
    assert [len(p.prompts) for p in plans] == [128, 2]


def _sentences(*texts: str) -> bytes:
    return json.dumps({"sentences": list(texts), "tokens": [], "logprob": None}).encode()


def test_parse_reply_and_echo_stripping_with_or_without_markers() -> None:
    client = core()
    assert client.codec is not None
    prompt = "<extra_id_0>System\nS\n\n<extra_id_1>User\nHi\n<extra_id_1>Assistant\n<extra_id_2>quality:9\n"
    bare = "System\nS\n\nUser\nHi\nAssistant\nquality:9\n"
    outputs = parse_reply(200, _sentences(prompt + "Hello<extra_id_1>", bare + "Hello\n"), {}, 2, "m")
    # markers dropped: the LF left of the dropped end-of-turn marker goes too (the answer is clean)
    assert client.codec.decode(outputs, [prompt, prompt]) == ["Hello<extra_id_1>", "Hello"]


@pytest.mark.parametrize(
    "message",
    ["tokens_to_generate must be an integer greater than 0",
     "temperature must be a positive number less than or equal to 100.0"],
)
def test_validation_strings_with_http_200_are_invalid_requests(message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message.replace(".", r"\.")):
        parse_reply(200, json.dumps(message).encode(), {}, 1, "m")


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (400, b'"Maximum number of sentences is 128"\n', InvalidRequestError),
        (500, b'{"message": "Internal Server Error"}', InvalidRequestError),
        (503, b"<html>busy</html>", ServerUnavailableError),
        (502, b"", ServerUnavailableError),
        (429, b"{}", ServerOverloadedError),
    ],
)
def test_http_statuses_go_through_classify(status: int, body: bytes, error: type[Exception]) -> None:
    with pytest.raises(RestStatusError) as info:
        parse_reply(status, body, {"Retry-After": "3"}, 1, "m")
    mapped = classify(info.value, model="m")
    assert type(mapped) is error and mapped.status == str(status)
    if status == 400:
        assert "Maximum number of sentences is 128" in str(mapped)
    if status == 429:
        assert isinstance(mapped, ServerOverloadedError) and mapped.retry_after == 3.0


@pytest.mark.parametrize("body", [b"not json", b'{"sentences": ["only one"]}', b'{"other": 1}', b"[1]"])
def test_malformed_answers_are_invalid_requests(body: bytes) -> None:
    with pytest.raises(InvalidRequestError):
        parse_reply(200, body, {}, 2, "m")


def test_a_reward_model_is_not_a_rest_model() -> None:
    config = {"name": "rm", "max_batch_size": 8, "input": [{"name": "sentences", "data_type": "TYPE_STRING",
                                                            "dims": [1], "optional": True}],
              "output": [{"name": "rewards", "data_type": "TYPE_FP32", "dims": [1]}]}
    with pytest.raises(ConfigurationError, match="RewardModel"):
        NemoRestCodec(spec_from_config(config, "rm"))


def test_double_validation_matches_nemo() -> None:
    from steerlm_testing.rest_double import validate

    ok = {"sentences": ["a"]}
    assert validate(ok) is None
    assert validate({"sentences": ["a"] * 129}) == (400, "Maximum number of sentences is 128")
    cases = {
        "tokens_to_generate": (0, "tokens_to_generate must be an integer greater than 0"),
        "all_probs": ("yes", "all_probs must be a boolean value"),
        "temperature": (0.0, "temperature must be a positive number less than or equal to 100.0"),
        "add_BOS": (1, "add_BOS must be a boolean value"),
        "greedy": ("true", "greedy must be a boolean value"),
        "top_k": (-1, "top_k must be a positive integer number"),
        "top_p": (1.5, "top_p must be a positive number less than or equal to 1.0"),
        "repetition_penalty": (0.5, "repetition_penalty must be a positive number no less than 1.0"),
        "end_strings": ("x", "expect end_strings to be a list of strings"),
        "min_tokens_to_generate": (-1, "min_tokens_to_generate must be an integer no less than 0"),
        "compute_logprob": (None, "compute_logprob must be a boolean value"),
        "random_seed": (-3, "random_seed must be a positive integer number or None"),
    }
    for key, (value, message) in cases.items():
        assert validate({**ok, key: value}) == (200, message)
    assert validate({**ok, "top_k": True}) == (200, "top_k must be a positive integer number")  # type(x) == int
    assert validate({**ok, "random_seed": None, "top_k": 1.0}) is None


def test_scalar_arrays_become_python_values() -> None:
    client = core()
    wire = client.plan(["p"], GenerationParams(max_tokens=3), stream=False)[0].wire
    assert isinstance(wire.fixed.arrays["tokens_to_generate"], np.ndarray)
    assert type(request_body(wire)["tokens_to_generate"]) is int
