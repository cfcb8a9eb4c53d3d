"""The TensorRT-LLM backend `ensemble` signature (`text_input` → `text_output`; REFERENCE §3d).

Codec only. Scalars are `[B,1]` in the declared dtypes — UINT32 in v0.5–v0.6, INT32 from v0.7 —
`random_seed` UINT64, `stream` BOOL. Stop words go in `stop_words` as `[B,n]`, one plain string per
word (no CSV). Non-streamed `text_output` starts with the prompt unless `exclude_input_in_output`
is set (sent as true when the model declares it); the echo is stripped. Streamed responses are
deltas; the last data response carries `triton_final_response`. Where the ensemble declares
`return_num_input_tokens` / `return_num_output_tokens` and their outputs, the counts are asked for (in a
stream the last reported count is kept).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from steerlm.params import GenerationParams
from steerlm.transport.base import Array
from steerlm.transport.codecs import DEFAULT_MAX_TOKENS, Codec, ParamInput, bytes_matrix

__all__ = ["TrtllmEnsembleCodec"]


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

    def encode_params(
        self, params: GenerationParams, stops: Sequence[str], batch: int, *, stream: bool
    ) -> tuple[dict[str, Array], list[str]]:
        out, dropped = super().encode_params(params, stops, batch, stream=stream)
        bad = self.spec.inputs.get("bad_words")
        if bad is not None and not bad.optional:  # v0.5.0 declares both word lists required
            out["bad_words"] = bytes_matrix([[""]] * batch)
        return out, dropped

    def _stop_array(self, stops: Sequence[str], batch: int) -> Array:
        return bytes_matrix([list(stops) or [""]] * batch)
