"""The Hugging Face backend on the embedded tiny model: in process, then over a real local server.

The server runs ``--preset hf`` (the unary and decoupled NeMo-deploy models, plus the vLLM-backend signature) with
``force_end_of_turn_after=12``: every generation that is not cut earlier emits ``<extra_id_1>`` as its
13th token, so the end-of-turn path is exercised by real generation, and shorter requests
(``max_output_len`` < 13) end on their length.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch  # noqa: F401  (a missing install must fail, not skip)
import transformers  # noqa: F401
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from steerlm.serve.backend import SamplingRequest
from steerlm.serve.hf import HFBackend, load_pretrained, random_backend
from steerlm.serve.hf_stream import Detokenizer, Sampling
from steerlm.serve.tiny_model import END_OF_TURN, ensure_tiny_model
from steerlm_testing import LocalServer

CHAT = "Llama2-70B-SteerLM-Chat"
STREAMING = f"{CHAT}-streaming"
FORCED_AFTER = 12
VLLM = "hf-vllm"  # Triton's vLLM-backend signature in front of the same model
PROMPT = ("<extra_id_0>System\n\n<extra_id_1>User\nWhat does the tiny model know?\n"
          "<extra_id_1>Assistant\n")
OTHER = "<extra_id_0>System\n\n<extra_id_1>User\nHi\n<extra_id_1>Assistant\n"
NO_LOGITS = {"output_generation_logits": ("BOOL", False), "output_context_logits": ("BOOL", False)}
SAMPLE = {"top_k": ("INT64", 0), "top_p": ("FP32", 0.9), "temperature": ("FP32", 1.0)}


# ----- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_tiny_model(tmp_path_factory.getbasetemp() / "steerlm-cache")


@pytest.fixture(scope="module")
def backend(model_dir: Path) -> HFBackend:
    """The same weights as the server's, in this process (CPU float32: identical greedy output)."""
    return HFBackend.from_objects(*load_pretrained(model_dir, "cpu"))


@pytest.fixture(scope="module")
def forced(backend: HFBackend) -> HFBackend:
    return HFBackend.from_objects(backend.model, backend.tokenizer, force_end_of_turn_after=FORCED_AFTER)


@pytest.fixture(scope="module")
def hf_server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    options = [f"model={model_dir}", "device=cpu", f"force_end_of_turn_after={FORCED_AFTER}"]
    args = ["--backend", "hf", *(arg for option in options for arg in ("--backend-option", option))]
    server = LocalServer(preset="hf", workdir=tmp_path_factory.mktemp("hf-server"), startup_timeout=180.0,
                         models=[f"{VLLM}=vllm_backend"], extra_args=args)
    with server:
        yield server


def tensors(module: Any, prompts: list[str], **scalars: tuple[str, Any]) -> list[Any]:
    """NeMo's wire format: prompts and every scalar as ``[B, 1]``."""
    arrays = {"prompts": ("BYTES", np.array([[p.encode()] for p in prompts], dtype=np.object_))}
    for name, (datatype, value) in {**NO_LOGITS, **scalars}.items():
        dtype = {"INT64": np.int64, "FP32": np.float32, "BOOL": np.bool_, "BYTES": np.object_}[datatype]
        arrays[name] = (datatype, np.full((len(prompts), 1), value, dtype=dtype))
    inputs = []
    for name, (datatype, array) in arrays.items():
        tensor = module.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    return inputs


def unary(server: LocalServer, prompts: list[str], protocol: str = "http", **scalars: tuple[str, Any]) -> list[str]:
    module: Any = httpclient if protocol == "http" else grpcclient
    address = server.http_address if protocol == "http" else server.grpc_address
    client = module.InferenceServerClient(address)
    try:
        result = client.infer(CHAT, tensors(module, prompts, **scalars))
    finally:
        client.close()
    return [row[0].decode() for row in result.as_numpy("outputs")]


def streamed(server: LocalServer, prompt: str, **scalars: tuple[str, Any]) -> list[str]:
    """Every response's cumulative text, until PyTriton's empty final response (bounded waits)."""
    responses: queue.Queue[tuple[Any, Any]] = queue.Queue()
    client = grpcclient.InferenceServerClient(server.grpc_address)
    client.start_stream(callback=lambda result, error: responses.put((result, error)))
    texts: list[str] = []
    try:
        client.async_stream_infer(STREAMING, tensors(grpcclient, [prompt], **scalars),
                                  enable_empty_final_response=True)
        while True:
            result, error = responses.get(timeout=60)
            assert error is None, error
            outputs = result.as_numpy("outputs")
            if outputs is not None:
                texts.append(outputs[0][0].decode())
            if result.get_response().parameters["triton_final_response"].bool_param:
                return texts
    finally:
        client.stop_stream(cancel_requests=True)
        client.close()


def reference(backend: HFBackend, prompt: str, max_tokens: int, **params: Any) -> str:
    return backend.generate([prompt], SamplingRequest(max_tokens=max_tokens, **params))[0]


# ----- in process ----------------------------------------------------------------------------------
def test_greedy_generation_has_max_tokens_and_no_prompt(backend: HFBackend) -> None:
    steps = list(backend.stream([PROMPT], SamplingRequest(max_tokens=8)))
    assert len(steps) == 8
    assert steps[-1] == [reference(backend, PROMPT, 8)]
    assert steps[-1][0] and PROMPT not in steps[-1][0]


def test_left_padded_batch_matches_single_prompts(backend: HFBackend) -> None:
    prompts = [PROMPT, "x", OTHER]
    batch = backend.generate(prompts, SamplingRequest(max_tokens=10))
    assert batch == [reference(backend, p, 10) for p in prompts]


def test_stream_is_cumulative_and_leaves_no_thread(backend: HFBackend) -> None:
    before = threading.active_count()
    steps = list(backend.stream([PROMPT, OTHER], SamplingRequest(max_tokens=12)))
    for earlier, later in itertools.pairwise(steps):
        assert all(b.startswith(a) for a, b in zip(earlier, later, strict=True))
    abandoned = backend.stream([PROMPT], SamplingRequest(max_tokens=50))
    next(abandoned)
    abandoned.close()
    assert threading.active_count() == before


def test_concurrent_requests_match_sequential_ones(backend: HFBackend) -> None:
    prompts = [PROMPT, OTHER, "a", "bb", PROMPT + "x", OTHER + "y"]
    expected = [reference(backend, p, 12) for p in prompts]
    with ThreadPoolExecutor(max_workers=len(prompts)) as pool:
        assert list(pool.map(lambda p: reference(backend, p, 12), prompts)) == expected


def test_forced_end_of_turn_is_kept_and_ends_generation(forced: HFBackend) -> None:
    steps = list(forced.stream([PROMPT], SamplingRequest(max_tokens=40)))
    assert len(steps) == FORCED_AFTER + 1
    assert steps[-1][0].endswith(END_OF_TURN) and steps[-1][0].count(END_OF_TURN) == 1


def test_stop_word_cuts_right_after_it(backend: HFBackend) -> None:
    full = reference(backend, PROMPT, 10)
    stop = full[4:6]
    cut = full[: full.index(stop) + len(stop)]
    assert reference(backend, PROMPT, 10, stop_words=(stop,)) == cut
    assert [s[0] for s in backend.stream([PROMPT], SamplingRequest(max_tokens=10, stop_words=(stop,)))][-1] == cut


def test_bad_words_are_never_generated(backend: HFBackend) -> None:
    first = reference(backend, PROMPT, 1)
    assert len(backend.tokenizer.encode(first, add_special_tokens=False)) == 1
    assert reference(backend, PROMPT, 1, bad_words=(first,)) != first


def test_seeded_sampling_is_reproducible(backend: HFBackend) -> None:
    params = {"top_k": 0, "top_p": 0.9, "temperature": 1.0}
    assert reference(backend, PROMPT, 12, seed=7, **params) == reference(backend, PROMPT, 12, seed=7, **params)
    assert reference(backend, PROMPT, 12, seed=7, **params) != reference(backend, PROMPT, 12, seed=8, **params)


def test_greedy_rule_follows_nemo() -> None:
    assert Sampling.from_request(SamplingRequest()).greedy  # NeMo's defaults: top_k 1, top_p 0
    assert Sampling.from_request(SamplingRequest(top_k=0, top_p=0.0)).greedy
    assert Sampling.from_request(SamplingRequest(top_k=40, top_p=0.9, temperature=0.0)).greedy
    assert not Sampling.from_request(SamplingRequest(top_k=0, top_p=0.9)).greedy
    assert not Sampling.from_request(SamplingRequest(top_k=40, top_p=0.0)).greedy


def test_detokenizer_holds_back_half_a_character(backend: HFBackend) -> None:
    ids = backend.tokenizer.encode("é", add_special_tokens=False)
    assert len(ids) == 2  # two byte pieces: the corpus is ASCII
    decoder = Detokenizer(lambda part: backend.tokenizer.decode(part))
    decoder.push(ids[0])
    assert decoder.text == ""
    decoder.push(ids[1])
    assert decoder.text == "é"


def test_random_weights_with_ignore_eos_run_to_max_tokens(model_dir: Path) -> None:
    backend = random_backend("tiny", layers="1", device="cpu", ignore_eos="true", tokenizer=str(model_dir))
    assert backend.model.config.num_hidden_layers == 1
    assert not backend.dropped_ids and not backend.kept_ids
    assert backend.end_of_turn_id in backend.banned_ids
    assert len(list(backend.stream([PROMPT, OTHER], SamplingRequest(max_tokens=20)))) == 20


def test_bad_requests_fail(backend: HFBackend) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        backend.generate([PROMPT], SamplingRequest(max_tokens=0))
    with pytest.raises(ValueError, match="positions"):
        backend.generate([PROMPT], SamplingRequest(max_tokens=5000))


# ----- over the local server -----------------------------------------------------------------------
@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_server_unary_batch_matches_the_model(hf_server: LocalServer, backend: HFBackend, protocol: str) -> None:
    texts = unary(hf_server, [PROMPT, OTHER], protocol, max_output_len=("INT64", 8))
    assert texts == [reference(backend, PROMPT, 8), reference(backend, OTHER, 8)]


def test_server_streams_one_response_per_token(hf_server: LocalServer, backend: HFBackend) -> None:
    texts = streamed(hf_server, PROMPT, max_output_len=("INT64", 8))
    assert len(texts) == 8
    assert all(b.startswith(a) for a, b in itertools.pairwise(texts))
    assert texts[-1] == reference(backend, PROMPT, 8)


def test_server_stops_at_end_of_turn(hf_server: LocalServer, forced: HFBackend) -> None:
    expected = reference(forced, PROMPT, 40)
    assert expected.endswith(END_OF_TURN)
    assert unary(hf_server, [PROMPT], max_output_len=("INT64", 40)) == [expected]
    texts = streamed(hf_server, PROMPT, max_output_len=("INT64", 40))
    assert len(texts) == FORCED_AFTER + 1 and texts[-1] == expected


def test_server_stop_words(hf_server: LocalServer, backend: HFBackend) -> None:
    full = reference(backend, PROMPT, 10)
    stop = full[4:6]
    words = ("BYTES", f"zzz,{stop}".encode())
    cut = full[: full.index(stop) + len(stop)]
    assert unary(hf_server, [PROMPT], max_output_len=("INT64", 10), stop_words_list=words) == [cut]
    assert streamed(hf_server, PROMPT, max_output_len=("INT64", 10), stop_words_list=words)[-1] == cut


def test_server_seed(hf_server: LocalServer, backend: HFBackend) -> None:
    seeded: dict[str, Any] = {**SAMPLE, "max_output_len": ("INT64", 10), "random_seed": ("INT64", 3)}
    first = unary(hf_server, [PROMPT], **seeded)
    assert first == unary(hf_server, [PROMPT], **seeded)
    assert first == [reference(backend, PROMPT, 10, top_k=0, top_p=0.9, seed=3)]


def test_demo_streams_through_both_frameworks(hf_server: LocalServer, model_dir: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from steerlm_demo import demo

    demo.run(hf_server, demo.Served("Llama2-70B-SteerLM-Chat", model_dir, max_tokens=8))
    out = capsys.readouterr().out
    assert out.count("streamed chunks") == 4  # verbosity 0 and 4, the RAG chain, the LlamaIndex query
    assert out.count("It is identical to steerlm.format_prompt") == 3, out
    assert demo.expected_prompt() in out


def test_vllm_backend_signature_reports_the_tokenizers_prompt_count(hf_server: LocalServer, forced: HFBackend) -> None:
    """The vLLM-backend signature in front of the real model: the server cuts at ``<extra_id_1>``, the answer
    equals the client-side cut of the same greedy generation, and the prompt count is the tokenizer's."""
    from steerlm.client import SteerLMClient
    from steerlm.output import clean_completion
    from steerlm.params import GenerationParams
    from steerlm.prompts import format_prompt

    prompt = format_prompt([{"role": "user", "content": "Say something."}], profile=CHAT)
    with SteerLMClient(VLLM, hf_server.grpc_url, profile=CHAT, max_retries=0, timeout=120) as client:
        done = client.generate(prompt, GenerationParams(max_tokens=20, top_k=1))
    expected, _ = clean_completion(reference(forced, prompt, 20), [END_OF_TURN])
    assert done.text == expected and done.finish_reason == "stop"
    assert done.usage is not None and done.usage.input_tokens == forced.count_tokens(prompt)
    assert 1 <= done.usage.output_tokens <= FORCED_AFTER + 1
