"""NeMo Export-Deploy's PyTriton signature (`prompts` → `sentences`), in its three deployables.

The variant is read from the declared inputs:

* Megatron in-framework (`megatronllm_deployable`): declares `compute_logprob`, `apply_chat_template`,
  `echo`; length `max_length`, seed `random_seed`; `compute_logprob=true` → FP32 `log_probs` `[B, T]`;
* Hugging Face (`hf_deployable`): declares `output_logits`, `output_scores`; length `max_length`, seed
  `random_seed`; no log-probabilities (raw scores only);
* vLLM exporter (`vllm_exporter`): declares `max_tokens`, `n_log_probs`; length `max_tokens`, seed `seed`;
  `n_log_probs=1` → BYTES `log_probs`, one JSON ``{token: logprob}`` per position.

In all three the length is the number of tokens to GENERATE (Megatron's `num_tokens_to_generate`,
Hugging Face's `max_new_tokens`, vLLM's `max_tokens`). Scalars are `[B,1]` in the declared dtypes (INT64,
FP32, BOOL; the server reads the first row). `apply_chat_template` and `echo` are sent as false where
declared (steerlm renders the prompt and wants the reply only). These servers take no stop words and do
not stream: the client cuts at the profile's stops. Errors come back in-band (`An error occurred: …`),
sometimes as a single row whatever the batch size. The vLLM exporter's own default length is 16 tokens,
so an unset `max_tokens` is sent as 512 there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from steerlm.params import GenerationParams
from steerlm.transport.base import Array
from steerlm.transport.codecs import DEFAULT_MAX_TOKENS, Codec, ParamInput, scalar_array
from steerlm.transport.reports import json_logprobs

__all__ = ["ExportDeployCodec"]


class ExportDeployCodec(Codec):
    """`prompts` BYTES in, `sentences` BYTES out; unary; no prompt echo; client-side stops."""

    name: ClassVar[str] = "export_deploy"
    prompt_input: ClassVar[str] = "prompts"
    text_output: ClassVar[str] = "sentences"
    cumulative_stream: ClassVar[bool] = True
    strips_echo: ClassVar[bool] = False
    params: ClassVar[tuple[ParamInput, ...]] = (
        ParamInput("max_tokens", ("max_length", "max_tokens"), "error", DEFAULT_MAX_TOKENS),
        ParamInput("top_k", ("top_k",), "error"),
        ParamInput("top_p", ("top_p",), "error"),
        ParamInput("temperature", ("temperature",), "error"),
        ParamInput("seed", ("random_seed", "seed"), "warn"),
        ParamInput("repetition_penalty", ("repetition_penalty",), "warn"),
    )
    constant_inputs: ClassVar[Mapping[str, Any]] = {"apply_chat_template": False, "echo": False}
    filled_inputs: ClassVar[tuple[str, ...]] = ("compute_logprob", "n_log_probs")
    logprob_output: ClassVar[str] = "log_probs"

    @property
    def variant(self) -> str:
        """``megatron``, ``hf`` or ``vllm`` (from the declared inputs)."""
        inputs = self.spec.inputs
        if "max_tokens" in inputs or "n_log_probs" in inputs:
            return "vllm"
        if "output_logits" in inputs or "output_scores" in inputs:
            return "hf"
        return "megatron"

    @property
    def takes_logprobs(self) -> bool:
        inputs = self.spec.inputs
        return "log_probs" in self.spec.outputs and ("compute_logprob" in inputs or "n_log_probs" in inputs)

    def encode_params(
        self, params: GenerationParams, stops: Sequence[str], batch: int, *, stream: bool
    ) -> tuple[dict[str, Array], list[str]]:
        out, dropped = super().encode_params(params, stops, batch, stream=stream)
        inputs = self.spec.inputs
        if params.max_tokens is None and "max_tokens" in inputs:
            out["max_tokens"] = scalar_array(inputs["max_tokens"], DEFAULT_MAX_TOKENS, batch)
        if params.logprobs and self.takes_logprobs:
            flag, value = ("compute_logprob", True) if "compute_logprob" in inputs else ("n_log_probs", 1)
            out[flag] = scalar_array(inputs[flag], value, batch)
        return out, dropped

    def parse_logprobs(self, array: Array, rows: int) -> list[list[float]]:
        """Megatron: FP32 `[B, T]`; vLLM exporter: one JSON `{token: logprob}` per position (padded `0`)."""
        if self.spec.outputs[self.logprob_output].datatype == "BYTES":
            return json_logprobs(array, rows)
        return super().parse_logprobs(array, rows)
