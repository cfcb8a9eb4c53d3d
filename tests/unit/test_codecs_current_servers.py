"""Codecs of the current servers without a server: NeMo Export-Deploy (`prompts` -> `sentences`: Megatron, Hugging
Face and vLLM-exporter variants) and Triton's vLLM backend (`text_input` + `sampling_parameters`); the server's
reports (finish reason, token counts, log-probabilities); a server-side stop gives the same answer as a
client-side cut, whole and streamed in any chunking."""

from __future__ import annotations

import itertools
import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from steerlm.client.core import ClientCore, StreamAssembler
from steerlm.client.settings import ClientSettings
from steerlm.errors import ConfigurationError, InvalidRequestError
from steerlm.logprobs import TokenLogprob, align
from steerlm.params import GenerationParams
from steerlm.transport import make_codec
from steerlm.transport.base import ModelSpec, StreamEvent, TensorSpec
from steerlm.transport.reports import RawAnswer, ServerReport
from steerlm.usage import TokenUsage

EOT = "<extra_id_1>"
# Datatypes as PyTriton declares the deployables' inputs: np.int_ -> INT64, np.single -> FP32, np.bool_ -> BOOL.
MEGATRON = {"prompts": ("BYTES", False), "max_length": "INT64", "max_batch_size": "INT64", "top_k": "INT64",
            "top_p": "FP32", "temperature": "FP32", "random_seed": "INT64", "compute_logprob": "BOOL",
            "apply_chat_template": "BOOL", "n_top_logprobs": "INT64", "echo": "BOOL"}
HF = {"prompts": ("BYTES", False), "max_length": "INT64", "max_batch_size": "INT64", "top_k": "INT64",
      "top_p": "FP32", "temperature": "FP32", "random_seed": "INT64", "output_logits": "BOOL", "output_scores": "BOOL"}
VLLM_EXPORTER = {"prompts": ("BYTES", False), "max_tokens": "INT64", "min_tokens": "INT64", "top_k": "INT64",
                 "top_p": "FP32", "temperature": "FP32", "seed": "INT64", "n_log_probs": "INT64",
                 "n_prompt_log_probs": "INT64"}
VLLM_BACKEND_INPUTS = {"text_input": ("BYTES", False), "image": "BYTES", "stream": "BOOL",
                       "sampling_parameters": "BYTES", "exclude_input_in_output": "BOOL",
                       "return_finish_reason": "BOOL", "return_cumulative_logprob": "BOOL", "return_logprobs": "BOOL",
                       "return_num_input_tokens": "BOOL", "return_num_output_tokens": "BOOL",
                       "embedding_request": "BYTES"}
VLLM_BACKEND_OUTPUTS = {"text_output": "BYTES", "finish_reason": "BYTES", "cumulative_logprob": "FP32",
                        "logprobs": "BYTES", "num_input_tokens": "UINT32", "num_output_tokens": "UINT32"}


def spec(inputs: dict[str, Any], outputs: dict[str, str], *, mbs: int = 8, decoupled: bool = False) -> ModelSpec:
    ins = {}
    for key, value in inputs.items():
        dtype, optional = value if isinstance(value, tuple) else (value, True)
        ins[key] = TensorSpec(key, dtype, (-1,), optional)
    return ModelSpec("m", ins, {k: TensorSpec(k, v, (-1,), True) for k, v in outputs.items()}, mbs, decoupled)


def megatron() -> ModelSpec:
    return spec(MEGATRON, {"sentences": "BYTES", "log_probs": "FP32", "top_logprobs": "BYTES"})


def hf() -> ModelSpec:
    return spec(HF, {"sentences": "BYTES", "logits": "FP32", "scores": "FP32"})


def vllm_exporter() -> ModelSpec:
    return spec(VLLM_EXPORTER, {"sentences": "BYTES", "log_probs": "BYTES", "prompt_log_probs": "BYTES"})


def vllm_backend() -> ModelSpec:
    return spec(VLLM_BACKEND_INPUTS, VLLM_BACKEND_OUTPUTS, mbs=0, decoupled=True)


def config(model: ModelSpec) -> dict[str, Any]:
    """`model` as a Triton model config (what the client reads from the server)."""
    return {"name": model.name, "max_batch_size": model.max_batch_size,
            "model_transaction_policy": {"decoupled": model.decoupled},
            "input": [{"name": t.name, "data_type": f"TYPE_{t.datatype}", "dims": [1], "optional": t.optional}
                      for t in model.inputs.values()],
            "output": [{"name": t.name, "data_type": f"TYPE_{t.datatype}", "dims": [-1]}
                       for t in model.outputs.values()]}


def core_for(model: ModelSpec, url: str = "grpc://h:1") -> ClientCore:
    made = ClientCore(ClientSettings("m", url, profile="Llama2-70B-SteerLM-Chat", timeout=5.0, max_retries=0))
    made.install(config(model))
    return made


def texts(*values: str) -> np.ndarray:
    arr = np.empty((len(values), 1), dtype=object)
    arr[:, 0] = [v.encode() for v in values]
    return arr


FULL = GenerationParams(max_tokens=7, temperature=0.5, top_k=3, top_p=0.9, seed=11)


# ---------------------------------------------------------------------------------------------- Export-Deploy
@pytest.mark.parametrize(("model", "variant", "length", "seed"), [
    (megatron, "megatron", "max_length", "random_seed"), (hf, "hf", "max_length", "random_seed"),
    (vllm_exporter, "vllm", "max_tokens", "seed"),
])
def test_export_deploy_variants_encode_the_declared_dtypes(model: Any, variant: str, length: str, seed: str) -> None:
    codec = make_codec(model())
    assert codec.name == "export_deploy" and codec.variant == variant and codec.outputs == ("sentences",)
    arrays, dropped = codec.encode_params(FULL, [EOT], 3, stream=False)
    assert dropped == []
    assert arrays[length].dtype == np.int64 and arrays[length].shape == (3, 1) and (arrays[length] == 7).all()
    assert arrays[seed].dtype == np.int64 and (arrays[seed] == 11).all()
    assert arrays["top_p"].dtype == np.float32 and arrays["temperature"].dtype == np.float32
    assert arrays["top_k"].dtype == np.int64
    # no stop words (the client cuts), never the server's chat template or echo, no batch-size override
    assert not {"stop_words_list", "stop", "max_batch_size", "compute_logprob", "n_log_probs"} & set(arrays)
    if variant == "megatron":
        assert arrays["apply_chat_template"].dtype == np.bool_ and not arrays["apply_chat_template"].any()
        assert arrays["echo"].dtype == np.bool_ and not arrays["echo"].any()
    else:
        assert "apply_chat_template" not in arrays and "echo" not in arrays
    prompts = codec.encode_prompts(["a", "b", "c"])["prompts"]
    assert prompts.shape == (3, 1) and prompts[2, 0] == b"c"


def test_export_deploy_length_default_only_where_the_server_default_is_tiny() -> None:
    """The vLLM exporter defaults to 16 tokens; the Megatron and HF deployables to 256."""
    arrays, _ = make_codec(vllm_exporter()).encode_params(GenerationParams(), [], 1, stream=False)
    assert arrays["max_tokens"][0, 0] == 512
    for model in (megatron(), hf()):
        assert "max_length" not in make_codec(model).encode_params(GenerationParams(), [], 1, stream=False)[0]


def test_export_deploy_logprobs_requested_per_variant() -> None:
    asked = GenerationParams(logprobs=True)
    mega = make_codec(megatron())
    arrays, dropped = mega.encode_params(asked, [], 2, stream=False)
    assert arrays["compute_logprob"].all() and dropped == [] and arrays["n_top_logprobs"][0, 0] == 1  # names tokens
    assert mega.outputs_for(asked) == ("sentences", "log_probs", "top_logprobs")
    arrays, _ = mega.encode_params(GenerationParams(top_logprobs=4), [], 1, stream=False)
    assert arrays["compute_logprob"][0, 0] and arrays["n_top_logprobs"][0, 0] == 4
    exporter = make_codec(vllm_exporter())
    arrays, _ = exporter.encode_params(asked, [], 1, stream=False)
    assert arrays["n_log_probs"][0, 0] == 1 and exporter.outputs_for(asked)[-1] == "log_probs"
    assert exporter.encode_params(GenerationParams(top_logprobs=5), [], 1, stream=False)[0]["n_log_probs"][0, 0] == 5
    face = make_codec(hf())
    with pytest.raises(ConfigurationError, match=r"returns no log-probabilities.*Megatron and vLLM deployables"):
        face.encode_params(asked, [], 1, stream=False)  # asked for, never silently dropped


def test_export_deploy_decodes_sentences_logprobs_and_in_band_errors() -> None:
    mega = core_for(megatron())
    request = mega.plan(["p1", "p2"], GenerationParams(logprobs=True), stream=False)[0]
    log_probs = np.array([[-0.5, -1.0, -0.25], [-2.0, 0.0, 0.0]], dtype=np.float32)
    tops = texts(json.dumps([{"Hi": -0.5, "Ho": -1.5}, {".": -0.9, ".\n": -1.0}, {"\n": -0.25}]),
                 json.dumps([{"Yo": -2.0}]))  # Megatron's top_logprobs: one JSON list per row
    answers = mega.decode(request, {"sentences": texts("Hi.\n" + EOT + "User", "Yo"), "log_probs": log_probs,
                                    "top_logprobs": tops})
    done = mega.completions(request.prompts, answers, mega.stops(GenerationParams()))
    assert [d.text for d in done] == ["Hi.", "Yo"] and [d.finish_reason for d in done] == ["stop", "length"]
    # the generated token: the listed one the text continues with and whose value the server reported
    assert done[0].logprobs == (TokenLogprob("Hi", -0.5), TokenLogprob(".\n", -1.0), TokenLogprob("\n", -0.25))
    assert done[1].logprobs == (TokenLogprob("Yo", -2.0),) and done[0].usage is None  # padding dropped
    kept = mega.completions(request.prompts, answers, (), top=2)[0].logprobs
    assert kept is not None and kept[0].top == (("Hi", -0.5), ("Ho", -1.5))
    exporter = make_codec(vllm_exporter())
    cells = np.array([[json.dumps({"Hi": -0.1}).encode(), json.dumps({"a": -0.2, "b": -3.5}).encode()],
                      [json.dumps({"Yo": -0.3}).encode(), b"0"]], dtype=object)  # padded with 0, as the exporter does
    reports = [ServerReport(), ServerReport()]
    exporter.read_reports({"sentences": texts("Hib", "Yo"), "log_probs": cells}, reports)
    named = [align(r.logprobs or [], t) for r, t in zip(reports, ("Hib", "Yo"), strict=True)]
    assert [[(e.token, e.logprob) for e in row] for row in named] == [[("Hi", -0.1), ("b", -3.5)], [("Yo", -0.3)]]
    with pytest.raises(InvalidRequestError, match="CUDA out of memory"):  # one error row for a batch of two
        make_codec(hf()).decode({"sentences": texts("An error occurred: CUDA out of memory")}, ["a", "b"])


# ---------------------------------------------------------------------------------------------- vLLM backend
def test_vllm_backend_is_told_apart_from_the_trtllm_ensemble() -> None:
    assert make_codec(vllm_backend()).name == "vllm_backend"
    without = spec({k: v for k, v in VLLM_BACKEND_INPUTS.items() if k != "sampling_parameters"},
                   VLLM_BACKEND_OUTPUTS, mbs=0, decoupled=True)
    assert make_codec(without).name == "trtllm_ensemble"


def test_vllm_backend_sends_unbatched_tensors_and_sampling_json() -> None:
    core = core_for(vllm_backend())
    params = FULL.merge(stop=["User:"])
    plan = core.plan(["p1", "p2", "p3"], params, stream=False)
    assert core.unbatched and [r.prompts for r in plan] == [("p1",), ("p2",), ("p3",)]
    wire = plan[0].wire
    assert wire.inputs["text_input"].shape == (1,) and wire.inputs["text_input"][0] == b"p1"
    fixed = wire.fixed.arrays
    assert all(a.shape == (1,) for a in fixed.values())
    assert fixed["exclude_input_in_output"][0] and not fixed["stream"][0] and fixed["stream"].dtype == np.bool_
    assert all(fixed[f][0] for f in ("return_finish_reason", "return_num_input_tokens", "return_num_output_tokens"))
    assert "return_logprobs" not in fixed and "image" not in fixed and "embedding_request" not in fixed
    sampling = json.loads(fixed["sampling_parameters"][0])
    assert sampling == {"max_tokens": 7, "temperature": 0.5, "top_k": 3, "top_p": 0.9, "seed": 11,
                        "stop": [EOT, "User:"]}
    assert wire.fixed.outputs == ("text_output", "finish_reason", "num_input_tokens", "num_output_tokens")
    assert core.plan(["p"], params, stream=True)[0].wire.fixed.arrays["stream"][0]
    asked = core.plan(["p"], GenerationParams(logprobs=True), stream=False)[0].wire.fixed
    assert asked.arrays["return_logprobs"][0] and json.loads(asked.arrays["sampling_parameters"][0]) == {
        "logprobs": 0, "max_tokens": 512, "stop": [EOT]}  # vLLM's own default length is 16 tokens
    assert asked.outputs[-1] == "logprobs"
    top = core.plan(["p"], GenerationParams(top_logprobs=3), stream=False)[0].wire.fixed
    assert json.loads(top.arrays["sampling_parameters"][0])["logprobs"] == 3
    with pytest.raises(ConfigurationError, match="one prompt per request"):
        core.codec.encode_prompts(["a", "b"])  # type: ignore[union-attr]


def _final(text: str, reason: str, n_in: int, n_out: int) -> dict[str, np.ndarray]:
    return {"text_output": np.array([text.encode()], dtype=object),
            "finish_reason": np.array([reason.encode()], dtype=object),
            "num_input_tokens": np.array(n_in, dtype=np.uint32),  # a scalar, as the backend sends it
            "num_output_tokens": np.array([n_out], dtype=np.uint32)}


def test_vllm_backend_whole_answer_reports_usage_and_finish_reason() -> None:
    core = core_for(vllm_backend())
    request = core.plan(["p"], GenerationParams(), stream=False)[0]
    joiner = core.joiner(request, core.stops(GenerationParams()))
    assert joiner.feed(StreamEvent(_final("Sure, here.\n", "stop", 31, 4), True))
    done = core.completions(request.prompts, joiner.answers(), core.stops(GenerationParams()))[0]
    assert done.text == "Sure, here." and done.finish_reason == "stop" and done.usage == TokenUsage(31, 4)
    joiner = core.joiner(request, core.stops(GenerationParams()))
    joiner.feed(StreamEvent(_final("cut off\n", "length", 31, 16), True))
    done = core.completions(request.prompts, joiner.answers(), core.stops(GenerationParams()))[0]
    assert done.text == "cut off\n" and done.finish_reason == "length" and done.usage.total_tokens == 47  # type: ignore[union-attr]


def test_vllm_backend_stream_sums_per_response_counts() -> None:
    assembler = StreamAssembler(make_codec(vllm_backend()), [EOT])
    chunks = []
    for delta, reason, final in (("Sure", "None", False), (", here.", "None", False), ("\n", "stop", True)):
        chunks += assembler.feed(StreamEvent(_final(delta, reason, 31, len(delta)), final))
    assert "".join(c.text for c in chunks) == "Sure, here."
    assert chunks[-1].finish_reason == "stop" and chunks[-1].usage == TokenUsage(31, 4 + 7 + 1)
    assert all(c.usage is None and c.finish_reason is None for c in chunks[:-1])


def test_trtllm_ensemble_asks_for_counts_where_declared() -> None:
    inputs = {"text_input": ("BYTES", False), "max_tokens": ("INT32", False), "stream": "BOOL",
              "return_num_input_tokens": "BOOL", "return_num_output_tokens": "BOOL"}
    outputs = {"text_output": "BYTES", "num_input_tokens": "INT32", "num_output_tokens": "INT32"}
    codec = make_codec(spec(inputs, outputs))
    arrays, _ = codec.encode_params(GenerationParams(max_tokens=5), [], 1, stream=False)
    assert arrays["return_num_input_tokens"].all() and arrays["return_num_output_tokens"].all()
    assert codec.outputs == ("text_output", "num_input_tokens", "num_output_tokens")
    plain = make_codec(spec(inputs, {"text_output": "BYTES"}))  # the outputs are not declared: nothing asked
    assert plain.outputs == ("text_output",)
    assert "return_num_input_tokens" not in plain.encode_params(GenerationParams(max_tokens=5), [], 1, stream=False)[0]


# ---------------------------------------------------------------------------------------------- server-side stops
_TEXT = st.text(alphabet="ab .\n<>", max_size=24)


@given(_TEXT, st.lists(st.integers(0, 30), max_size=5), st.booleans())
def test_a_server_side_stop_equals_a_client_side_cut(answer: str, cuts: list[int], flagged: bool) -> None:
    """vLLM stops server-side (`…answer.\\n`, finish `stop`); NeMo deploy leaves the cut to the client
    (`…answer.\\n<extra_id_1>…`). Whole or streamed in any chunking, with or without a final flag (gRPC / the
    HTTP generate extension), the cleaned answers are equal."""
    stops = (EOT,)
    client_side = core_for(spec({"prompts": ("BYTES", False)}, {"sentences": "BYTES"}))
    whole = answer + "\n" + EOT + "User: more"
    expected = client_side.completions(["p"], [RawAnswer(whole, ServerReport())], stops)[0]
    server_side = core_for(vllm_backend())
    report = ServerReport(finish_reason="stop")
    got = server_side.completions(["p"], [RawAnswer(answer + "\n", report)], stops)[0]
    assert (got.text, got.finish_reason) == (expected.text, expected.finish_reason) == (expected.text, "stop")

    sent = answer + "\n"
    bounds = sorted({min(c, len(sent)) for c in cuts} | {0, len(sent)})
    pieces = [sent[a:b] for a, b in itertools.pairwise(bounds)] or [""]
    assembler = StreamAssembler(server_side.codec, stops)  # type: ignore[arg-type]
    chunks = []
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        event = {"text_output": np.array([piece.encode()], dtype=object),
                 "finish_reason": np.array([b"stop" if last else b"None"], dtype=object)}
        chunks += assembler.feed(StreamEvent(event, last and flagged))
    if not flagged:
        chunks.append(assembler.end())
    assert "".join(c.text for c in chunks) == expected.text and chunks[-1].finish_reason == "stop"
    streamed_text = ""
    for chunk in chunks[:-1]:  # a trailing newline is never yielded early: it may be the one before a stop
        streamed_text += chunk.text
        assert expected.text.startswith(streamed_text)
