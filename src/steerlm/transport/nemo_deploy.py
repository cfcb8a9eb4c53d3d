"""The NeMo deploy signature (PyTriton `prompts` → `outputs`, TensorRT-LLM deployable; REFERENCE §3a).

Scalars are `[B,1]` with the declared dtypes (INT64 / FP32 / BOOL); the length input is
`max_output_len` (NeMo ≥ 2.0) or `max_output_token` (23.10-era containers, 2.0.0rc0), whichever the
model declares; `output_generation_logits` / `output_context_logits` are sent as false when declared
(NeMo ≥ 2.1 marks them required). Stop words go in `stop_words_list` as **one CSV string per row**
(`[B,1]`, words with commas or quotes CSV-quoted), because the server `csv.reader`-splits each row; a list
given as the extra input `bad_words_list` (or `stop_words_list`) goes the same way.
Outputs never echo the prompt; streamed responses carry the cumulative text so far.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from steerlm.transport.base import Array
from steerlm.transport.codecs import DEFAULT_MAX_TOKENS, Codec, ParamInput, scalar_array

__all__ = ["NemoDeployCodec", "csv_stop_words"]


_WORD_LISTS = ("bad_words_list", "stop_words_list")  # `[B,1]`: one CSV record per row (`csv.reader`-split)


def csv_stop_words(stops: Sequence[str]) -> str:
    """The stop words as one CSV record, as NeMo's `csv.reader` reads it back."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(list(stops))
    return buffer.getvalue()[:-1]


class NemoDeployCodec(Codec):
    """`prompts` BYTES in, `outputs` BYTES out; cumulative streaming; no prompt echo."""

    name: ClassVar[str] = "nemo_deploy"
    prompt_input: ClassVar[str] = "prompts"
    text_output: ClassVar[str] = "outputs"
    cumulative_stream: ClassVar[bool] = True
    strips_echo: ClassVar[bool] = False
    stop_input: ClassVar[str] = "stop_words_list"
    params: ClassVar[tuple[ParamInput, ...]] = (
        ParamInput("max_tokens", ("max_output_len", "max_output_token"), "error", DEFAULT_MAX_TOKENS),
        ParamInput("top_k", ("top_k",), "error", 1),
        ParamInput("top_p", ("top_p",), "error", 0.0),
        ParamInput("temperature", ("temperature",), "error", 1.0),
        ParamInput("seed", ("random_seed",), "warn"),
        ParamInput("repetition_penalty", ("repetition_penalty",), "warn"),
    )
    constant_inputs: ClassVar[Mapping[str, Any]] = {
        "output_generation_logits": False,
        "output_context_logits": False,
    }

    def _stop_array(self, stops: Sequence[str], batch: int) -> Array:
        return scalar_array(self.spec.inputs[self.stop_input], csv_stop_words(stops), batch)

    def _add_extra_inputs(self, out: dict[str, Array], extra: Sequence[tuple[str, Any]], batch: int) -> None:
        """A list given for `bad_words_list` goes as one CSV record per row, as the server reads it."""
        super()._add_extra_inputs(out, [(name, csv_stop_words(value) if name in _WORD_LISTS and isinstance(value, tuple)
                                         else value) for name, value in extra], batch)
