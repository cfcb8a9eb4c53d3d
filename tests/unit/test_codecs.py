"""Signature codecs without a server: declared dtypes and [B,1] shapes, stop-word encodings, decoding,
in-band errors, prompt echo, cumulative/delta streaming and the final-flag response decoding."""

from __future__ import annotations

import csv
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from steerlm.errors import ConfigurationError, InvalidRequestError
from steerlm.params import GenerationParams
from steerlm.transport import make_codec, spec_from_config
from steerlm.transport.assembly import Joiner, StreamAssembler
from steerlm.transport.base import ModelSpec, StreamEvent, TensorSpec
from steerlm.transport.nemo_deploy import NemoDeployCodec, csv_stop_words
from steerlm.transport.signatures import SIGNATURES, detect
from steerlm.transport.trtllm_ensemble import TrtllmEnsembleCodec

_NEMO_SCALARS = {"max_output_len": "INT64", "top_k": "INT64", "top_p": "FP32", "temperature": "FP32",
                 "random_seed": "INT64", "stop_words_list": "BYTES", "bad_words_list": "BYTES",
                 "no_repeat_ngram_size": "FP32", "task_id": "BYTES", "lora_uids": "BYTES"}


def spec(inputs: dict[str, str | tuple[str, bool]], outputs: dict[str, str], *, mbs: int = 8,
         decoupled: bool = False, name: str = "m") -> ModelSpec:
    ins = {}
    for key, value in inputs.items():
        dtype, optional = value if isinstance(value, tuple) else (value, True)
        ins[key] = TensorSpec(key, dtype, (-1,), optional)
    outs = {k: TensorSpec(k, v, (-1,), True) for k, v in outputs.items()}
    return ModelSpec(name, ins, outs, mbs, decoupled)


def nemo_current() -> ModelSpec:
    return spec({"prompts": ("BYTES", False), **_NEMO_SCALARS, "output_generation_logits": ("BOOL", False),
                 "output_context_logits": ("BOOL", False)}, {"outputs": "BYTES", "generation_logits": "FP32"})


def nemo_2310() -> ModelSpec:
    return spec({"prompts": ("BYTES", False), "max_output_token": "INT64", "top_k": "INT64", "top_p": "FP32",
                 "temperature": "FP32", "stop_words_list": "BYTES"}, {"outputs": "BYTES"})


def trtllm(int_type: str = "INT32", *, v0_5: bool = False, exclude: bool = False) -> ModelSpec:
    ins: dict[str, str | tuple[str, bool]] = {
        "text_input": ("BYTES", False), "max_tokens": (int_type, False),
        "bad_words": ("BYTES", not v0_5), "stop_words": ("BYTES", not v0_5), "end_id": int_type,
        "pad_id": int_type, "top_k": int_type, "top_p": "FP32", "temperature": "FP32",
        "repetition_penalty": "FP32", "random_seed": "UINT64", "stream": "BOOL", "beam_width": int_type,
    }
    if exclude:
        ins["exclude_input_in_output"] = "BOOL"
    return spec(ins, {"text_output": "BYTES", "cum_log_probs": "FP32"})


FULL = GenerationParams(max_tokens=7, temperature=0.5, top_k=3, top_p=0.9, seed=11)


def test_nemo_current_declared_dtypes_and_shapes() -> None:
    codec = make_codec(nemo_current())
    assert isinstance(codec, NemoDeployCodec)
    arrays, dropped = codec.encode_params(FULL, ["<extra_id_1>", "a,b"], 3, stream=False)
    assert dropped == []
    expected = {"max_output_len": np.int64, "top_k": np.int64, "random_seed": np.int64, "top_p": np.float32,
                "temperature": np.float32, "output_generation_logits": np.bool_,
                "output_context_logits": np.bool_, "stop_words_list": np.object_}
    assert {k: v.dtype.type for k, v in arrays.items()} == expected
    assert all(v.shape == (3, 1) for v in arrays.values())
    assert arrays["max_output_len"][:, 0].tolist() == [7, 7, 7]
    assert not arrays["output_generation_logits"].any() and not arrays["output_context_logits"].any()
    assert arrays["stop_words_list"][0, 0] == b'<extra_id_1>,"a,b"'
    prompts = codec.encode_prompts(["x", "ü"])["prompts"]
    assert prompts.shape == (2, 1) and prompts[1, 0] == "ü".encode()


def test_nemo_legacy_uses_max_output_token_and_drops_seed() -> None:
    codec = make_codec(nemo_2310())
    arrays, dropped = codec.encode_params(FULL, [], 1, stream=False)
    assert "max_output_token" in arrays and "max_output_len" not in arrays
    assert dropped == ["seed"]
    assert "random_seed" not in arrays and "stop_words_list" not in arrays
    assert "output_generation_logits" not in arrays  # undeclared inputs are omitted


def test_unset_params_are_omitted_unless_required() -> None:
    codec = make_codec(nemo_current())
    arrays, _ = codec.encode_params(GenerationParams(), [], 2, stream=False)
    assert set(arrays) == {"output_generation_logits", "output_context_logits"}
    required = spec({"prompts": ("BYTES", False), "max_output_token": ("INT64", False),
                     "top_k": ("INT64", False), "top_p": ("FP32", False), "temperature": ("FP32", False)},
                    {"outputs": "BYTES"})
    arrays, _ = make_codec(required).encode_params(GenerationParams(), [], 1, stream=False)
    assert {k: v[0, 0].item() for k, v in arrays.items()} == {
        "max_output_token": 512, "top_k": 1, "top_p": 0.0, "temperature": 1.0}


def test_semantic_param_the_model_cannot_take_is_a_configuration_error() -> None:
    codec = make_codec(spec({"prompts": "BYTES", "max_output_len": "INT64"}, {"outputs": "BYTES"}))
    with pytest.raises(ConfigurationError, match="temperature"):
        codec.encode_params(GenerationParams(temperature=0.2), [], 1, stream=False)
    _, dropped = codec.encode_params(GenerationParams(repetition_penalty=1.2), [], 1, stream=False)
    assert dropped == ["repetition_penalty"]


def test_unknown_required_input_and_missing_signature_name_what_the_server_declares() -> None:
    with pytest.raises(ConfigurationError, match=r"requires inputs steerlm cannot fill: \['secret'\]"):
        make_codec(spec({"prompts": "BYTES", "secret": ("INT64", False)}, {"outputs": "BYTES"}))
    with pytest.raises(ConfigurationError, match=r"nemo_deploy needs output 'outputs' with input 'prompts'.*"
                                                  r"declares inputs \[prompts:BYTES\], outputs \[answer:BYTES\]"):
        make_codec(spec({"prompts": "BYTES"}, {"answer": "BYTES"}))
    with pytest.raises(ConfigurationError, match=r"missing \['text_input', 'text_output'\].*declares inputs \[prompts"):
        make_codec(nemo_current(), "trtllm_ensemble")


@pytest.mark.parametrize(("inputs", "outputs", "signature"), [
    (("prompts",), ("outputs",), "nemo_deploy"),
    (("prompts",), ("sentences",), "export_deploy"),
    (("text_input", "sampling_parameters"), ("text_output",), "vllm_backend"),
    (("text_input",), ("text_output", "cum_log_probs"), "trtllm_ensemble"),
    (("sentences",), ("sentences",), "nemo_rest"),
    (("sentences",), ("rewards",), "reward_model"),
    (("sentences",), ("rewards", "exceeded"), "reward_model"),  # NeMo-Aligner v0.1-v0.3
    (("sentences", "tokens", "sequence_lengths"), ("rewards",), "reward_model"),
])
def test_detection_matches_the_prompt_input_and_the_output(inputs: tuple[str, ...], outputs: tuple[str, ...],
                                                           signature: str) -> None:
    model = spec({n: "BYTES" for n in inputs}, {n: "BYTES" for n in outputs})
    assert make_codec(model).name == signature
    assert detect(model).name == signature


@pytest.mark.parametrize(("inputs", "outputs", "half"), [
    ({"sentences": "BYTES"}, {"text_output": "BYTES"},
     r"nemo_rest needs output 'sentences' with input 'sentences'; reward_model needs output 'rewards'.*"
     r"trtllm_ensemble needs input 'text_input' with output 'text_output'"),
    ({"text_input": "BYTES"}, {"outputs": "BYTES"}, r"trtllm_ensemble needs output 'text_output'"),
    ({"input_ids": "INT32"}, {"logits": "FP32"}, r"matches no known signature\. steerlm knows"),
])
def test_no_signature_matches_names_the_known_pairs_and_what_the_server_declares(
        inputs: dict[str, str], outputs: dict[str, str], half: str) -> None:
    model = spec(dict(inputs), outputs, name="odd")
    with pytest.raises(ConfigurationError, match=half) as info:
        make_codec(model)
    message = str(info.value)
    assert "model 'odd'" in message and f"the server declares {model.describe()}" in message
    for pair in ("nemo_deploy (prompts -> outputs)", "trtllm_ensemble (text_input -> text_output)",
                 "nemo_rest (sentences -> sentences)", "reward_model (sentences -> rewards)"):
        assert pair in message


def test_signature_registry_does_not_depend_on_imports() -> None:
    assert list(SIGNATURES) == ["nemo_deploy", "export_deploy", "vllm_backend", "trtllm_ensemble", "nemo_rest",
                                "reward_model", "openai"]
    with pytest.raises(ConfigurationError, match="unknown signature 'nope'"):
        make_codec(nemo_current(), "nope")
    assert not make_codec(spec({"sentences": "BYTES"}, {"rewards": "FP32"})).generates_text


@pytest.mark.parametrize(("int_type", "np_type"), [("INT32", np.int32), ("UINT32", np.uint32)])
def test_trtllm_dtypes_follow_the_declaration(int_type: str, np_type: type) -> None:
    codec = make_codec(trtllm(int_type))
    assert isinstance(codec, TrtllmEnsembleCodec)
    arrays, dropped = codec.encode_params(FULL.merge(repetition_penalty=1.1), ["</s>", "a,b", "x"], 2,
                                          stream=True)
    assert dropped == []
    assert arrays["max_tokens"].dtype == np_type and arrays["top_k"].dtype == np_type
    assert arrays["random_seed"].dtype == np.uint64 and arrays["temperature"].dtype == np.float32
    assert arrays["stream"].dtype == np.bool_ and arrays["stream"].all()
    assert arrays["stop_words"].shape == (2, 3)
    assert arrays["stop_words"][1].tolist() == [b"</s>", b"a,b", b"x"]
    assert "bad_words" not in arrays and "end_id" not in arrays
    arrays, _ = codec.encode_params(GenerationParams(), [], 1, stream=False)
    assert arrays["max_tokens"][0, 0] == 512 and not arrays["stream"][0, 0]


def test_trtllm_v0_5_required_word_lists_and_exclude_input() -> None:
    arrays, _ = make_codec(trtllm("UINT32", v0_5=True)).encode_params(GenerationParams(), [], 2, stream=False)
    assert arrays["bad_words"].tolist() == [[b""], [b""]] and arrays["stop_words"].tolist() == [[b""], [b""]]
    arrays, _ = make_codec(trtllm(exclude=True)).encode_params(GenerationParams(), [], 1, stream=False)
    assert arrays["exclude_input_in_output"][0, 0]


def test_values_out_of_the_declared_range_are_configuration_errors() -> None:
    codec = make_codec(trtllm("INT32"))
    with pytest.raises(ConfigurationError, match="INT32"):
        codec.encode_params(GenerationParams(max_tokens=2**31), [], 1, stream=False)


def test_decode_rows_in_order_and_in_band_errors() -> None:
    codec = make_codec(nemo_current())
    outputs = {"outputs": np.array([[b"one"], [b"two"]], dtype=object)}
    assert codec.decode(outputs, ["a", "b"]) == ["one", "two"]
    assert codec.decode({"outputs": np.array([b"x", b"y"], dtype=object)}, ["a", "b"]) == ["x", "y"]
    single = {"outputs": np.array([[b"An error occurred: CUDA out of memory"]], dtype=object)}
    with pytest.raises(InvalidRequestError, match="CUDA out of memory") as info:
        codec.decode(single, ["a", "b"])
    assert info.value.status == "in-band" and not type(info.value).retryable
    with pytest.raises(InvalidRequestError, match="1 rows for 2 prompts"):
        codec.decode({"outputs": np.array([[b"x"]], dtype=object)}, ["a", "b"])
    with pytest.raises(InvalidRequestError, match="no 'outputs' output"):
        codec.decode({}, ["a"])


def test_trtllm_strips_the_prompt_echo() -> None:
    codec = make_codec(trtllm())
    outputs = {"text_output": np.array([b"PROMPT answer", b"other"], dtype=object)}
    assert codec.decode(outputs, ["PROMPT", "P2"]) == [" answer", "other"]


@given(st.lists(st.text(min_size=1).filter(lambda s: "\x00" not in s and "\r" not in s), min_size=1,
                max_size=5))
def test_csv_stop_words_round_trip_through_nemo_csv_reader(words: list[str]) -> None:
    encoded = csv_stop_words(words)
    assert next(csv.reader([encoded])) == words


def test_cumulative_stream_decoding_and_multibyte_holdback() -> None:
    decoder = make_codec(nemo_current()).stream_decoder(1)

    def out(text: str) -> dict[str, Any]:
        return {"outputs": np.array([[text.encode()]], dtype=object)}

    assert decoder.feed(out("Hel")) == ["Hel"]
    assert decoder.feed(out("Hello wor\ufffd")) == ["lo wor"]
    assert decoder.feed(out("Hello world")) == ["ld"]
    assert decoder.feed({}, final=True) == [""]
    assert decoder.texts == ["Hello world"]
    with pytest.raises(InvalidRequestError, match="boom"):
        decoder.feed(out("An error occurred: boom"))


def test_delta_stream_decoding() -> None:
    decoder = make_codec(trtllm()).stream_decoder(2)
    arr = np.array([[b"a"], [b"b"]], dtype=object)
    assert decoder.feed({"text_output": arr}) == ["a", "b"]
    assert decoder.feed({"text_output": arr}, final=True) == ["a", "b"]
    assert decoder.texts == ["aa", "bb"]


def _events(codec_spec: ModelSpec, texts: list[str], *, final_on_data: bool) -> list[StreamEvent]:
    name = "outputs" if "outputs" in codec_spec.outputs else "text_output"
    events = [StreamEvent({name: np.array([[t.encode()]], dtype=object)}, False) for t in texts]
    if final_on_data:
        events[-1] = StreamEvent(events[-1].outputs, True)
    else:
        events.append(StreamEvent({}, True))
    return events


@pytest.mark.parametrize("final_on_data", [False, True])
def test_assembler_cuts_stops_across_chunk_boundaries(final_on_data: bool) -> None:
    cumulative = ["Hi", "Hi th", "Hi there\n<ext", "Hi there\n<extra_id_1>Us", "Hi there\n<extra_id_1>User"]
    assembler = StreamAssembler(make_codec(nemo_current()), ["<extra_id_1>"])
    chunks = [c for e in _events(nemo_current(), cumulative, final_on_data=final_on_data)
              for c in (assembler.feed(e) if not assembler.done else [])]
    assert "".join(c.text for c in chunks) == "Hi there"
    assert chunks[-1].finish_reason == "stop" and all(c.finish_reason is None for c in chunks[:-1])
    assert assembler.done and assembler.text == "Hi there"


@pytest.mark.parametrize("final_on_data", [False, True])
def test_assembler_length_finish_for_both_final_styles(final_on_data: bool) -> None:
    assembler = StreamAssembler(make_codec(trtllm()), ["</s>"])
    chunks = [c for e in _events(trtllm(), ["a", "b", "c"], final_on_data=final_on_data)
              for c in assembler.feed(e)]
    assert "".join(c.text for c in chunks) == "abc" and chunks[-1].finish_reason == "length"
    assert assembler.done


def test_assembler_end_without_final_flag() -> None:
    assembler = StreamAssembler(make_codec(nemo_current()), [])
    for event in _events(nemo_current(), ["a", "ab\ufffd"], final_on_data=False)[:-1]:
        assembler.feed(event)
    last = assembler.end()
    assert last.finish_reason == "length" and assembler.text == "ab\ufffd"


def test_joiner_stops_when_every_row_stopped() -> None:
    joiner = Joiner(make_codec(trtllm()), ["p", "q"], ["X"])
    arr = np.array([[b"aX"], [b"b"]], dtype=object)
    assert not joiner.feed(StreamEvent({"text_output": arr}, False))
    arr = np.array([[b""], [b"X"]], dtype=object)
    assert joiner.feed(StreamEvent({"text_output": arr}, False))
    assert joiner.texts() == ["aX", "bX"]


@pytest.mark.parametrize("final_on_data", [False, True])
def test_joiner_whole_answers_strip_the_echo_and_ignore_stops_in_the_prompt(final_on_data: bool) -> None:
    """`stream=false` on a decoupled TRT-LLM model: one whole, echoed response (+ maybe an empty final)."""
    prompts = ["Q<extra_id_1>", "R<extra_id_1>"]
    joiner = Joiner(make_codec(trtllm()), prompts, ["<extra_id_1>"], whole=True)
    whole = np.array([b"Q<extra_id_1>one<extra_id_1>", b"R<extra_id_1>two"], dtype=object)
    assert joiner.feed(StreamEvent({"text_output": whole}, final_on_data)) is final_on_data
    if not final_on_data:
        assert joiner.feed(StreamEvent({}, True))
    assert joiner.texts() == ["one<extra_id_1>", "two"]  # echo stripped; the client cuts stops later
    excluded = Joiner(make_codec(trtllm(exclude=True)), ["Q"], [], whole=True)  # exclude_input_in_output
    excluded.feed(StreamEvent({"text_output": np.array([b"answer"], dtype=object)}, True))
    assert excluded.texts() == ["answer"]


def test_core_plans_stream_false_for_whole_answers_and_one_prompt_per_http_stream() -> None:
    from steerlm.client.core import ClientCore
    from steerlm.client.settings import ClientSettings

    def core(url: str, decoupled: bool) -> ClientCore:
        made = ClientCore(ClientSettings("ens", url, timeout=5.0, max_retries=0))
        made.install({"name": "ens", "max_batch_size": 8, "model_transaction_policy": {"decoupled": decoupled},
                      "input": [{"name": "text_input", "data_type": "TYPE_STRING", "dims": [1]},
                                {"name": "max_tokens", "data_type": "TYPE_INT32", "dims": [1]},
                                {"name": "stream", "data_type": "TYPE_BOOL", "dims": [1], "optional": True}],
                      "output": [{"name": "text_output", "data_type": "TYPE_STRING", "dims": [-1]}]})
        return made

    prompts = [f"p{i}" for i in range(10)]
    grpc, http = core("grpc://h:1", True), core("http://h:2", True)
    plan = grpc.plan(prompts, GenerationParams(), stream=False)
    assert [len(r.prompts) for r in plan] == [8, 2] and not plan[0].wire.fixed.arrays["stream"].any()
    assert [len(r.prompts) for r in http.plan(prompts, GenerationParams(), stream=False)] == [1] * 10
    assert [len(r.prompts) for r in core("http://h:2", False).plan(prompts, GenerationParams(), stream=False)] == [8, 2]
    streamed = grpc.plan(["p"], GenerationParams(), stream=True)[0]
    assert streamed.wire.fixed.arrays["stream"].all() and streamed.stream
    whole = grpc.joiner(plan[1], ())
    whole.feed(StreamEvent({"text_output": np.array([b"p8 a", b"p9 b"], dtype=object)}, True))
    assert whole.texts() == [" a", " b"]


def test_a_text_client_refuses_a_detected_reward_model() -> None:
    from steerlm.client.core import ClientCore
    from steerlm.client.settings import ClientSettings

    made = ClientCore(ClientSettings("rm", "http://h:1", timeout=5.0, max_retries=0))
    config = {"name": "rm", "max_batch_size": 8, "input": [{"name": "sentences", "data_type": "TYPE_STRING"}],
              "output": [{"name": "rewards", "data_type": "TYPE_FP32"}]}
    with pytest.raises(ConfigurationError, match=r"reward_model signature \(sentences -> rewards\).*RewardModel"):
        made.install(config)


def test_spec_from_grpc_and_http_config() -> None:
    grpc_json = {"config": {"name": "m", "max_batch_size": 8, "input": [
        {"name": "prompts", "data_type": "TYPE_STRING", "dims": ["-1"]},
        {"name": "top_k", "data_type": "TYPE_INT64", "dims": ["-1"], "optional": True}],
        "output": [{"name": "outputs", "data_type": "TYPE_STRING", "dims": ["-1"]}],
        "model_transaction_policy": {"decoupled": True}}}
    http_json = {"name": "m", "max_batch_size": 8, "input": [
        {"name": "prompts", "data_type": "TYPE_STRING", "dims": [-1], "optional": False},
        {"name": "top_k", "data_type": "TYPE_INT64", "dims": [-1], "optional": True}],
        "output": [{"name": "outputs", "data_type": "TYPE_STRING", "dims": [-1]}],
        "model_transaction_policy": {"decoupled": True}}
    a, b = spec_from_config(grpc_json, "m"), spec_from_config(http_json, "m")
    assert a == b
    assert a.decoupled and a.max_batch_size == 8 and a.inputs["prompts"].datatype == "BYTES"
    assert not a.inputs["prompts"].optional and a.inputs["top_k"].optional
    assert not spec_from_config({"name": "u"}, "u").decoupled


def test_grpc_stream_response_with_final_flag_on_data() -> None:
    """TRT-LLM style: the last DATA response carries triton_final_response (decoded, not dropped)."""
    from tritonclient.grpc import service_pb2
    from tritonclient.utils import serialize_byte_tensor

    from steerlm.transport.base import FixedInputs, WireRequest
    from steerlm.transport.grpc_conn import _event

    response = service_pb2.ModelStreamInferResponse()
    infer = response.infer_response
    infer.model_name = "ensemble"
    out = infer.outputs.add()
    out.name, out.datatype = "text_output", "BYTES"
    out.shape.extend([1, 1])
    infer.raw_output_contents.append(serialize_byte_tensor(np.array([[b"tail"]], dtype=object)).item())
    request = WireRequest("ensemble", {}, FixedInputs({}, ("text_output",)))
    event = _event(response, request)
    assert not event.final and event.outputs["text_output"][0, 0] == b"tail"
    infer.parameters["triton_final_response"].bool_param = True
    event = _event(response, request)
    assert event.final and event.outputs["text_output"][0, 0] == b"tail"
    empty = service_pb2.ModelStreamInferResponse()
    empty.infer_response.parameters["triton_final_response"].bool_param = True
    assert _event(empty, request) == StreamEvent({}, True)
    failed = service_pb2.ModelStreamInferResponse(error_message="Traceback (most recent call last):\nValueError: x")
    with pytest.raises(InvalidRequestError, match="ValueError: x"):
        _event(failed, request)


@given(st.text(alphabet="ab<>ex_id1\n ", max_size=30), st.sampled_from([(), ("<extra_id_1>",), ("ab", "x\n")]))
def test_clean_shortcut_matches_clean_completion(text: str, stops: tuple[str, ...]) -> None:
    from steerlm.client.core import clean
    from steerlm.output import clean_completion

    assert clean(text, stops) == clean_completion(text, stops)
    assert clean(text + "<extra_id", stops) == clean_completion(text + "<extra_id", stops)


def test_a_delta_chunk_is_the_same_chunk_as_the_constructor() -> None:
    from steerlm.transport.assembly import StreamChunk

    fast, slow = StreamChunk.delta("tok "), StreamChunk("tok ")
    assert fast == slow and repr(fast) == repr(slow) and (fast.finish_reason, fast.usage) == (None, None)
