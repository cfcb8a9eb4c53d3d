"""The TensorRT-LLM backend `ensemble` signature (`text_input` → `text_output`; REFERENCE §3d).

Codec only. Scalars are `[B,1]` in the declared dtypes — UINT32 in v0.5–v0.6, INT32 from v0.7 —
`random_seed` UINT64, `stream` BOOL. Stop words go in `stop_words` as `[B,n]`, one plain string per
word (no CSV). Non-streamed `text_output` starts with the prompt unless `exclude_input_in_output`
is set (sent as true when the model declares it); the echo is stripped. Streamed responses are
deltas; the last data response carries `triton_final_response`. Where the ensemble declares
`return_num_input_tokens` / `return_num_output_tokens` and their outputs, the counts are asked for (in a
stream the last reported count is kept).

Guided decoding: where the ensemble declares the optional BYTES ``[1]`` inputs ``guided_decoding_guide_type``
and ``guided_decoding_guide`` (tensorrtllm_backend ``all_models/inflight_batcher_llm/ensemble/config.pbtxt``
and ``tensorrt_llm/config.pbtxt`` from v0.17, commit c1b90df5 "Update TensorRT-LLM backend (#693)"; read
at c2e65b88, the last commit holding ``all_models``; its ``tensorrt_llm/1/model.py`` maps the type "json",
"json_schema", "regex", "ebnf_grammar" onto ``trtllm.GuidedDecodingParams``), `GenerationParams.guided_json`
is sent as type ``json_schema`` with the schema as the guide. The server must also be started with a
``guided_decoding_backend`` (xgrammar); an ensemble without the inputs gets no guide (prompted fallback).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from steerlm.errors import ConfigurationError
from steerlm.params import GenerationParams
from steerlm.transport.base import Array
from steerlm.transport.codecs import DEFAULT_MAX_TOKENS, Codec, ParamInput, bytes_matrix, scalar_array

__all__ = ["GUIDE_INPUT", "GUIDE_TYPE_INPUT", "TrtllmEnsembleCodec"]

GUIDE_TYPE_INPUT = "guided_decoding_guide_type"
GUIDE_INPUT = "guided_decoding_guide"


class TrtllmEnsembleCodec(Codec):
    """`text_input` in, `text_output` out; delta streaming; prompt echo stripped."""

    name: ClassVar[str] = "trtllm_ensemble"
    prompt_input: ClassVar[str] = "text_input"
    text_output: ClassVar[str] = "text_output"
    cumulative_stream: ClassVar[bool] = False
    strips_echo: ClassVar[bool] = True
    stop_input: ClassVar[str] = "stop_words"
    params: ClassVar[tuple[ParamInput, ...]] = (
        ParamInput("max_tokens", ("max_tokens",), "error", DEFAULT_MAX_TOKENS),
        ParamInput("top_k", ("top_k",), "error"),
        ParamInput("top_p", ("top_p",), "error"),
        ParamInput("temperature", ("temperature",), "error"),
        ParamInput("seed", ("random_seed",), "warn"),
        ParamInput("repetition_penalty", ("repetition_penalty",), "warn"),
    )
    constant_inputs: ClassVar[Mapping[str, Any]] = {"exclude_input_in_output": True}
    filled_inputs: ClassVar[tuple[str, ...]] = ("bad_words",)
    reported: ClassVar[Mapping[str, str]] = {
        "num_input_tokens": "return_num_input_tokens",
        "num_output_tokens": "return_num_output_tokens",
    }
    guided_inputs: ClassVar[tuple[str, ...]] = (GUIDE_TYPE_INPUT, GUIDE_INPUT)

    def encode_params(
        self, params: GenerationParams, stops: Sequence[str], batch: int, *, stream: bool
    ) -> tuple[dict[str, Array], list[str]]:
        out, dropped = super().encode_params(params, stops, batch, stream=stream)
        bad = self.spec.inputs.get("bad_words")
        if bad is not None and not bad.optional:  # v0.5.0 declares both word lists required
            out["bad_words"] = bytes_matrix([[""]] * batch)
        if params.guided_json is not None and self.takes_guided:
            if GUIDE_INPUT in out or GUIDE_TYPE_INPUT in out:
                raise ConfigurationError(f"{GUIDE_INPUT!r} is set by guided_json; do not also pass it as an "
                                         "extra input")
            inputs = self.spec.inputs
            out[GUIDE_TYPE_INPUT] = scalar_array(inputs[GUIDE_TYPE_INPUT], "json_schema", batch)
            out[GUIDE_INPUT] = scalar_array(inputs[GUIDE_INPUT], params.guided_json, batch)
        return out, dropped

    def _stop_array(self, stops: Sequence[str], batch: int) -> Array:
        return bytes_matrix([list(stops) or [""]] * batch)
