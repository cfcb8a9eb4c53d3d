"""Triton's vLLM backend signature (`text_input` + `sampling_parameters` → `text_output`).

The backend declares `max_batch_size` 0 and is always decoupled, so tensors carry no batch dimension:
every input is `[1]`, one prompt per request (a batch is N concurrent requests). Sampling goes in one
JSON string, `sampling_parameters` (`max_tokens`, `temperature`, `top_p`, `top_k`, `seed`, `stop`,
`logprobs`, as vLLM's `SamplingParams` names them; `guided_decoding` ``{"json": schema}`` for
`GenerationParams.guided_json`, which the backend turns into vLLM's structured outputs; `max_tokens` is
always sent, 512 when unset, because vLLM's default is 16 tokens). `exclude_input_in_output` is always sent true (a
stream refuses false, and the reply is wanted without the prompt); `return_finish_reason`,
`return_num_input_tokens`, `return_num_output_tokens` (and `return_logprobs` when asked) are sent true
where declared. With `stream` false the backend answers with one final response holding the whole text;
with `stream` true each response holds a DELTA and its own `num_output_tokens` (summed here).

vLLM honours `stop` server-side and leaves the stop string out, so a reply ends ``…answer.\n`` with
finish reason ``stop``; the client then removes that newline exactly as when it cuts
``…answer.\n<extra_id_1>`` itself (`steerlm.transport.assembly`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from steerlm.errors import ConfigurationError
from steerlm.logprobs import TokenLogprob
from steerlm.params import GenerationParams
from steerlm.transport.base import Array
from steerlm.transport.codecs import DEFAULT_MAX_TOKENS, Codec, ParamInput, scalar_array
from steerlm.transport.reports import json_logprobs

__all__ = ["VllmBackendCodec", "sampling_json"]

_SAMPLING = ("max_tokens", "temperature", "top_p", "top_k", "seed", "repetition_penalty")


def sampling_json(params: GenerationParams, stops: Sequence[str], *, logprobs: bool) -> str:
    """The `sampling_parameters` JSON: the set fields (`max_tokens` always: 512 when unset, since vLLM's own
    default is 16 tokens), the stop strings, `logprobs: N` when asked (vLLM lists the N most likely tokens
    plus the sampled one; 0: the sampled one only, N = `top_logprobs`)."""
    body: dict[str, Any] = {name: getattr(params, name) for name in _SAMPLING if getattr(params, name) is not None}
    body.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
    if stops:
        body["stop"] = list(stops)
    if logprobs:
        body["logprobs"] = params.top_count
    if params.guided_json is not None:  # the backend maps it onto vLLM's StructuredOutputsParams
        body["guided_decoding"] = json.dumps({"json": json.loads(params.guided_json)}, ensure_ascii=False,
                                             sort_keys=True)
    return json.dumps(body, ensure_ascii=False, sort_keys=True)


class VllmBackendCodec(Codec):
    """`text_input` `[1]` in, `text_output` out; decoupled; delta streaming; server-side stops."""

    name: ClassVar[str] = "vllm_backend"
    prompt_input: ClassVar[str] = "text_input"
    text_output: ClassVar[str] = "text_output"
    marker_inputs: ClassVar[tuple[str, ...]] = ("sampling_parameters",)
    cumulative_stream: ClassVar[bool] = False
    strips_echo: ClassVar[bool] = False
    params: ClassVar[tuple[ParamInput, ...]] = ()
    stop_input: ClassVar[str] = "sampling_parameters"
    constant_inputs: ClassVar[Mapping[str, Any]] = {"exclude_input_in_output": True}
    filled_inputs: ClassVar[tuple[str, ...]] = ("return_logprobs",)
    reported: ClassVar[Mapping[str, str]] = {
        "finish_reason": "return_finish_reason",
        "num_input_tokens": "return_num_input_tokens",
        "num_output_tokens": "return_num_output_tokens",
    }
    summed_counts: ClassVar[bool] = True
    server_stops: ClassVar[bool] = True
    logprob_output: ClassVar[str] = "logprobs"
    guided_inputs: ClassVar[tuple[str, ...]] = ("sampling_parameters",)

    @property
    def takes_logprobs(self) -> bool:
        return "logprobs" in self.spec.outputs and "return_logprobs" in self.spec.inputs

    def encode_prompts(self, prompts: Sequence[str]) -> dict[str, Array]:
        """The prompt as a `[1]` BYTES tensor (the model has no batch dimension)."""
        if len(prompts) != 1:
            raise ConfigurationError(f"the {self.name} signature takes one prompt per request, got {len(prompts)}")
        arr = np.empty((1,), dtype=np.object_)
        arr[0] = prompts[0].encode("utf-8")
        return {self.prompt_input: arr}

    def encode_params(
        self, params: GenerationParams, stops: Sequence[str], batch: int, *, stream: bool
    ) -> tuple[dict[str, Array], list[str]]:
        """Every input `[1]`-shaped: the flags, `stream`, and the sampling JSON."""
        out, dropped = super().encode_params(params, (), 1, stream=stream)
        inputs = self.spec.inputs
        logprobs = params.wants_logprobs and self.takes_logprobs
        if logprobs:
            out["return_logprobs"] = scalar_array(inputs["return_logprobs"], True, 1)
        if "sampling_parameters" in inputs:
            out["sampling_parameters"] = scalar_array(
                inputs["sampling_parameters"], sampling_json(params, stops, logprobs=logprobs), 1)
        return {name: array.reshape(-1) for name, array in out.items()}, dropped

    def _stop_array(self, stops: Sequence[str], batch: int) -> Array:
        raise AssertionError("stops travel inside sampling_parameters")

    @property
    def takes_top_logprobs(self) -> bool:
        return self.takes_logprobs

    def parse_logprobs(self, outputs: Mapping[str, Array], rows: int) -> list[list[TokenLogprob]] | None:
        """One JSON cell per response: a list of positions, each ``{token_id: {logprob, rank, decoded_token}}``
        (the generated token is named from the text: `steerlm.logprobs.align`)."""
        array = outputs.get("logprobs")
        return None if array is None else json_logprobs(array, rows)
