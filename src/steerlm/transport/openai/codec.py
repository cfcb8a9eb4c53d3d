"""The OpenAI-compatible ``/v1/completions`` API as a signature (``prompt`` → ``text``). Pure numpy.

An OpenAI-compatible server declares no tensors, so `OPENAI_CONFIG` is the config the connection
synthesises for it: decoupled (it streams) with a ``stream`` flag (unset, it answers whole), and
``max_batch_size`` `MAX_PROMPTS` (a list of prompts goes in one request where the server takes lists).
Every input except ``prompt`` and ``max_tokens`` is optional, so a sampling field reaches the server
only when it was set. ``max_tokens`` is always sent (`DEFAULT_MAX_TOKENS` when unset), because the
legacy completions API defaults to 16 tokens. The stop strings (the profile's plus the caller's) go in
``stop``; the client cuts at them too, whatever the server did with them.

The connection reads the answer into ``text`` plus the report outputs every codec reads
(`steerlm.transport.reports`): ``finish_reason`` and, where the server reported them for that prompt,
``num_input_tokens`` / ``num_output_tokens``, and ``token_logprobs`` (`TokenLogprob`s: the chosen tokens, their
log-probabilities and the listed alternatives, asked for with ``logprobs: N`` — N = `top_logprobs`, at least 1 —
when `GenerationParams` asks for log-probabilities). OpenAI-compatible servers
honour ``stop`` and leave the stop string out (`server_stops`): the client puts it back before its one
clean-up, so the answer is the same whoever cut it.

``response_format`` (from `GenerationParams.guided_json`) and ``extra_body`` (the extra inputs and
`GenerationParams.extra_body`, merged into the JSON body) travel as JSON text: see
`steerlm.transport.openai.body`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from steerlm.logprobs import TokenLogprob
from steerlm.params import GenerationParams
from steerlm.transport.base import Array
from steerlm.transport.codecs import DEFAULT_MAX_TOKENS, Codec, ParamInput, bytes_matrix, scalar_array
from steerlm.transport.openai.body import ALWAYS_SET, extra_fields, response_format

__all__ = ["MAX_PROMPTS", "OPENAI_CONFIG", "OpenAICodec"]

MAX_PROMPTS = 64


def _tensor(name: str, datatype: str, dims: list[int], optional: bool = True) -> dict[str, Any]:
    return {"name": name, "data_type": f"TYPE_{datatype}", "dims": dims, "optional": optional}


OPENAI_CONFIG: Mapping[str, Any] = {
    "max_batch_size": MAX_PROMPTS,
    "model_transaction_policy": {"decoupled": True},
    "input": [
        _tensor("prompt", "STRING", [1], optional=False),
        _tensor("max_tokens", "INT64", [1], optional=False),
        _tensor("temperature", "FP64", [1]),
        _tensor("top_p", "FP64", [1]),
        _tensor("top_k", "INT64", [1]),
        _tensor("seed", "INT64", [1]),
        _tensor("repetition_penalty", "FP64", [1]),
        _tensor("stop", "STRING", [-1]),
        _tensor("stream", "BOOL", [1]),
        _tensor("logprobs", "INT64", [1]),
        _tensor("response_format", "STRING", [1]),
        _tensor("extra_body", "STRING", [1]),
    ],
    "output": [
        _tensor("text", "STRING", [1]),
        _tensor("finish_reason", "STRING", [1]),
        _tensor("num_input_tokens", "INT64", [1]),
        _tensor("num_output_tokens", "INT64", [1]),
        _tensor("token_logprobs", "FP64", [-1]),
    ],
}


class OpenAICodec(Codec):
    """``prompt`` in, ``text`` (the completion alone: no echo, deltas when streaming) out."""

    name: ClassVar[str] = "openai"
    prompt_input: ClassVar[str] = "prompt"
    text_output: ClassVar[str] = "text"
    cumulative_stream: ClassVar[bool] = False
    strips_echo: ClassVar[bool] = False
    stop_input: ClassVar[str] = "stop"
    server_stops: ClassVar[bool] = True
    logprob_output: ClassVar[str] = "token_logprobs"
    guided_inputs: ClassVar[tuple[str, ...]] = ("response_format",)
    takes_body: ClassVar[bool] = True
    params: ClassVar[tuple[ParamInput, ...]] = (
        ParamInput("max_tokens", ("max_tokens",), "error", DEFAULT_MAX_TOKENS),
        ParamInput("temperature", ("temperature",), "error"),
        ParamInput("top_p", ("top_p",), "error"),
        ParamInput("top_k", ("top_k",), "error"),
        ParamInput("seed", ("seed",), "error"),
        ParamInput("repetition_penalty", ("repetition_penalty",), "error"),
    )

    def encode_params(
        self, params: GenerationParams, stops: Sequence[str], batch: int, *, stream: bool
    ) -> tuple[dict[str, Array], list[str]]:
        """The base encoding plus ``logprobs`` (how many likely tokens to list per position: `top_logprobs`, at
        least 1 — some servers read 0 as "none") when `params` asks for log-probabilities, the
        ``response_format`` of `GenerationParams.guided_json` and the extra body fields (JSON text)."""
        out, dropped = super().encode_params(params, stops, batch, stream=stream)
        inputs = self.spec.inputs
        if params.wants_logprobs:
            out["logprobs"] = scalar_array(inputs["logprobs"], max(params.top_count, 1), batch)
        if params.guided_json is not None and self.takes_guided:
            out["response_format"] = scalar_array(
                inputs["response_format"], json.dumps(response_format(params.guided_json, params.guided_strict)),
                batch)
        if (params.extra_inputs or params.extra_body is not None) and "extra_body" in inputs:
            fields = extra_fields(params, ALWAYS_SET | set(out))
            out["extra_body"] = scalar_array(inputs["extra_body"], json.dumps(fields, ensure_ascii=False), batch)
        return out, dropped

    def _add_extra_inputs(self, out: dict[str, Array], extra: Sequence[tuple[str, Any]], batch: int) -> None:
        """Extra inputs are fields of the JSON body here (`encode_params`): nothing is declared to check."""

    @property
    def takes_top_logprobs(self) -> bool:
        return True

    def _stop_array(self, stops: Sequence[str], batch: int) -> Array:
        return bytes_matrix([list(stops)] * batch)

    def parse_logprobs(self, outputs: Mapping[str, Array], rows: int) -> list[list[TokenLogprob]] | None:
        """One cell per row holding that row's `TokenLogprob`s (read by `steerlm.transport.openai.wire`)."""
        array = outputs.get(self.logprob_output)
        if array is None:
            return None
        return [list(cell) for cell in np.asarray(array, dtype=np.object_).reshape(-1)[:rows]]
