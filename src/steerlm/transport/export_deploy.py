"""NeMo Export-Deploy's PyTriton signature (`prompts` → `sentences`), in its three deployables.

The variant is read from the declared inputs:

* Megatron in-framework (`megatronllm_deployable`): declares `compute_logprob`, `apply_chat_template`,
  `echo`; length `max_length`, seed `random_seed`; `compute_logprob=true` → FP32 `log_probs` `[B, T]` (values
  only), `n_top_logprobs=N` → BYTES `top_logprobs`, per row one JSON list of ``{token: logprob}`` (the N most
  likely tokens per generated position; names read in NVIDIA-NeMo/Export-Deploy
  ``nemo_deploy/llm/megatronllm_deployable.py`` at commit 06af474f85375e57ea0be3271ca4138be976acc9). Asked for
  log-probabilities, steerlm sends both (N at least 1): the listed tokens name the generated ones;
* Hugging Face (`hf_deployable`): declares `output_logits`, `output_scores`; length `max_length`, seed
  `random_seed`; no log-probabilities (raw scores only);
* vLLM exporter (`vllm_exporter`): declares `max_tokens`, `n_log_probs`; length `max_tokens`, seed `seed`;
  `n_log_probs=N` → BYTES `log_probs`, one JSON ``{token: logprob}`` per position (vLLM's N most likely
  tokens, plus the sampled one when it is not among them; N is at least 1).

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

from steerlm.logprobs import TokenLogprob
from steerlm.params import GenerationParams
from steerlm.transport.base import Array
from steerlm.transport.codecs import DEFAULT_MAX_TOKENS, Codec, ParamInput, scalar_array
from steerlm.transport.reports import json_logprobs, row_floats

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
    filled_inputs: ClassVar[tuple[str, ...]] = ("compute_logprob", "n_top_logprobs", "n_log_probs")
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

    @property
    def takes_top_logprobs(self) -> bool:
        if "n_log_probs" in self.spec.inputs:  # vLLM exporter: its log_probs list the top tokens
            return self.takes_logprobs
        return self.takes_logprobs and "n_top_logprobs" in self.spec.inputs and "top_logprobs" in self.spec.outputs

    def logprob_outputs(self, params: GenerationParams) -> tuple[str, ...]:
        """Megatron's `top_logprobs` too when it is declared (its keys name the generated tokens)."""
        if self.variant == "megatron" and self.takes_top_logprobs:
            return ("log_probs", "top_logprobs")
        return ("log_probs",)

    def encode_params(
        self, params: GenerationParams, stops: Sequence[str], batch: int, *, stream: bool
    ) -> tuple[dict[str, Array], list[str]]:
        out, dropped = super().encode_params(params, stops, batch, stream=stream)
        inputs = self.spec.inputs
        if params.max_tokens is None and "max_tokens" in inputs:
            out["max_tokens"] = scalar_array(inputs["max_tokens"], DEFAULT_MAX_TOKENS, batch)
        if params.wants_logprobs and self.takes_logprobs:
            # At least one listed token per position: its text names the generated token.
            listed = max(params.top_count, 1)
            if "compute_logprob" in inputs:
                out["compute_logprob"] = scalar_array(inputs["compute_logprob"], True, batch)
                if self.takes_top_logprobs:
                    out["n_top_logprobs"] = scalar_array(inputs["n_top_logprobs"], listed, batch)
            else:
                out["n_log_probs"] = scalar_array(inputs["n_log_probs"], listed, batch)
        return out, dropped

    def parse_logprobs(self, outputs: Mapping[str, Array], rows: int) -> list[list[TokenLogprob]] | None:
        """Megatron: FP32 `log_probs` `[B, T]` (the generated tokens' values) with `top_logprobs` (one JSON list
        of ``{token: logprob}`` per row); vLLM exporter: one JSON ``{token: logprob}`` per position (padded
        ``0``)."""
        array = outputs.get("log_probs")
        if array is None:
            return None
        if self.spec.outputs["log_probs"].datatype == "BYTES":
            return json_logprobs(array, rows)
        values = row_floats(array, rows)
        listed = outputs.get("top_logprobs")
        if listed is None:
            return [[TokenLogprob("", v) for v in row] for row in values]
        tops = json_logprobs(listed, rows)  # its length is the row's (log_probs rows are padded)
        return [[TokenLogprob("", v, top.top) for v, top in zip(row, top_row, strict=False)]
                for row, top_row in zip(values, tops, strict=False)]
