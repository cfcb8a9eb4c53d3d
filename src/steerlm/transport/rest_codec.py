"""The legacy NeMo REST server as a signature (``sentences`` → ``sentences``; REFERENCE §3b). Pure numpy.

The REST server declares nothing, so `REST_CONFIG` is the config `steerlm.transport.rest` synthesises
for it: ``max_batch_size`` 128, not decoupled. `NemoRestCodec` maps ``max_tokens`` →
``tokens_to_generate``, ``seed`` → ``random_seed``, stop strings → ``end_strings`` (one list), sends
``greedy: true`` for ``top_k == 1`` or ``temperature == 0`` (NeMo refuses ``temperature`` 0), and strips
the prompt from the answer (also when the detokenizer dropped the ``<extra_id_N>`` markers — then the
LF left of the dropped end-of-turn marker goes too, so the answer never ends in a stray newline).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from steerlm.errors import ConfigurationError, InvalidRequestError
from steerlm.params import GenerationParams
from steerlm.transport.base import Array, ModelSpec
from steerlm.transport.codecs import Codec, ParamInput, bytes_matrix, rows_to_text

__all__ = ["MAX_SENTENCES", "REST_CONFIG", "NemoRestCodec"]

MAX_SENTENCES = 128
_MARKER = re.compile(r"<extra_id_\d+>")


def _tensor(name: str, datatype: str, dims: list[int], optional: bool = True) -> dict[str, Any]:
    return {"name": name, "data_type": f"TYPE_{datatype}", "dims": dims, "optional": optional}


REST_CONFIG: Mapping[str, Any] = {
    "max_batch_size": MAX_SENTENCES,
    "input": [
        _tensor("sentences", "STRING", [1], optional=False),
        _tensor("tokens_to_generate", "INT64", [1]),
        _tensor("top_k", "INT64", [1]),
        _tensor("top_p", "FP64", [1]),
        _tensor("temperature", "FP64", [1]),
        _tensor("repetition_penalty", "FP64", [1]),
        _tensor("random_seed", "INT64", [1]),
        _tensor("greedy", "BOOL", [1]),
        _tensor("end_strings", "STRING", [-1]),
    ],
    "output": [_tensor("sentences", "STRING", [1])],
}


class NemoRestCodec(Codec):
    """``sentences`` in, ``sentences`` (prompt + completion) out; see the module docstring."""

    name: ClassVar[str] = "nemo_rest"
    prompt_input: ClassVar[str] = "sentences"
    text_output: ClassVar[str] = "sentences"
    cumulative_stream: ClassVar[bool] = False
    strips_echo: ClassVar[bool] = True
    stop_input: ClassVar[str] = "end_strings"
    params: ClassVar[tuple[ParamInput, ...]] = (
        ParamInput("max_tokens", ("tokens_to_generate",), "error"),
        ParamInput("top_k", ("top_k",), "error"),
        ParamInput("top_p", ("top_p",), "error"),
        ParamInput("temperature", ("temperature",), "error"),
        ParamInput("seed", ("random_seed",), "warn"),
        ParamInput("repetition_penalty", ("repetition_penalty",), "warn"),
    )
    filled_inputs: ClassVar[tuple[str, ...]] = ("greedy",)

    def __init__(self, spec: ModelSpec) -> None:
        if "rewards" in spec.outputs:
            raise ConfigurationError(f"model {spec.name!r} is a reward model (sentences -> rewards); "
                                     "score conversations with steerlm.RewardModel")
        super().__init__(spec)

    def encode_params(
        self, params: GenerationParams, stops: Sequence[str], batch: int, *, stream: bool
    ) -> tuple[dict[str, Array], list[str]]:
        out, dropped = super().encode_params(params, stops, batch, stream=stream)
        if params.temperature == 0:
            out.pop("temperature", None)
        if params.temperature == 0 or params.top_k == 1:
            out["greedy"] = np.full((batch, 1), True, dtype=np.bool_)
        return out, dropped

    def _stop_array(self, stops: Sequence[str], batch: int) -> Array:
        return bytes_matrix([list(stops)] * batch)

    def decode(self, outputs: Mapping[str, Array], prompts: Sequence[str]) -> list[str]:
        texts = rows_to_text(outputs[self.text_output])
        if len(texts) != len(prompts):
            raise InvalidRequestError(f"the server returned {len(texts)} sentences for {len(prompts)} prompts",
                                      model=self.spec.name)
        return [_completion(t, p) for t, p in zip(texts, prompts, strict=True)]


def _completion(text: str, prompt: str) -> str:
    r"""The answer in `text` (prompt + answer). A server whose detokenizer drops the ``<extra_id_N>`` markers
    also drops them from the end string it stopped at: ``"answer\n<extra_id_1>"`` comes back as
    ``"answer\n"``, so that LF (what is left of the end of turn) goes too."""
    if text.startswith(prompt):
        return text[len(prompt):]
    bare = _MARKER.sub("", prompt)
    if bare == prompt or not text.startswith(bare):
        return text
    answer = text[len(bare):]
    return answer[:-1] if answer.endswith("\n") else answer
