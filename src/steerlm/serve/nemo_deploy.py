"""NeMo deploy's Triton signature (``prompts`` -> ``outputs``), as NeMo declares it, in three variants.

* ``current`` (NeMo v2.2+): the full input list, with the REQUIRED BOOL ``output_generation_logits``
  and ``output_context_logits``;
* ``v2_0`` (NeMo v2.0): the same without the two logits flags;
* ``legacy_2310`` (the 23.10-era containers of the model cards): ``max_output_token`` instead of
  ``max_output_len``, and only ``top_k``/``top_p``/``temperature``/``stop_words_list`` besides.

Decoding follows NeMo: absent inputs take the server defaults, scalars take the first row, stop and bad
words are the first row's string split with `csv.reader` (an unquoted newline fails in-band, as in
NeMo), and any exception during generation becomes ``"An error occurred: <msg>"`` in every row. Unlike
a merged NeMo batch, each Triton request keeps its own parameters when dynamic batching merges several.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pytriton.model_config import Tensor

from steerlm.serve.backend import SamplingRequest

__all__ = [
    "ERROR_PREFIX",
    "VARIANTS",
    "NemoVariant",
    "decode_request",
    "encode_texts",
    "error_texts",
]

ERROR_PREFIX = "An error occurred: "
_LOGITS_FLAGS = ("output_generation_logits", "output_context_logits")


def _scalar(name: str, dtype: Any) -> Tensor:
    return Tensor(name=name, shape=(-1,), dtype=dtype, optional=True)


_PROMPTS = Tensor(name="prompts", shape=(-1,), dtype=bytes)
_SAMPLING = (
    _scalar("top_k", np.int_),
    _scalar("top_p", np.single),
    _scalar("temperature", np.single),
)
_V2_INPUTS = (
    _PROMPTS,
    _scalar("max_output_len", np.int_),
    *_SAMPLING,
    _scalar("random_seed", np.int_),
    _scalar("stop_words_list", bytes),
    _scalar("bad_words_list", bytes),
    _scalar("no_repeat_ngram_size", np.single),
    _scalar("task_id", bytes),
    _scalar("lora_uids", bytes),
)
_OUTPUTS = (Tensor(name="outputs", shape=(-1,), dtype=bytes),)


@dataclass(frozen=True)
class NemoVariant:
    """One historical version of the signature."""

    name: str
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    length_input: str


VARIANTS: dict[str, NemoVariant] = {
    "current": NemoVariant(
        name="current",
        inputs=(
            *_V2_INPUTS,
            Tensor(name="output_context_logits", shape=(-1,), dtype=np.bool_, optional=False),
            Tensor(name="output_generation_logits", shape=(-1,), dtype=np.bool_, optional=False),
        ),
        outputs=(
            *_OUTPUTS,
            Tensor(name="generation_logits", shape=(-1,), dtype=np.single),
            Tensor(name="context_logits", shape=(-1,), dtype=np.single),
        ),
        length_input="max_output_len",
    ),
    "v2_0": NemoVariant(name="v2_0", inputs=_V2_INPUTS, outputs=_OUTPUTS, length_input="max_output_len"),
    "legacy_2310": NemoVariant(
        name="legacy_2310",
        inputs=(_PROMPTS, _scalar("max_output_token", np.int_), *_SAMPLING, _scalar("stop_words_list", bytes)),
        outputs=_OUTPUTS,
        length_input="max_output_token",
    ),
}


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _first(inputs: Mapping[str, NDArray[Any]], name: str) -> Any:
    array = inputs.get(name)
    if array is None or array.size == 0:
        return None
    value = np.asarray(array).reshape(-1)[0]
    return value.item() if isinstance(value, np.generic) else value


def _words(inputs: Mapping[str, NDArray[Any]], name: str) -> tuple[str, ...]:
    row = _first(inputs, name)
    if row is None:
        return ()
    parsed = list(csv.reader([_text(row)]))
    return tuple(parsed[0]) if parsed else ()


def rows_of(inputs: Mapping[str, NDArray[Any]]) -> int:
    """How many prompts (batch rows) a request holds."""
    prompts = inputs.get("prompts")
    return int(prompts.shape[0]) if prompts is not None and prompts.ndim else 1


def decode_request(
    inputs: Mapping[str, NDArray[Any]], variant: NemoVariant
) -> tuple[list[str], SamplingRequest, dict[str, bool]]:
    """Prompts, sampling parameters and the logits flags of one request (NeMo's first-row rules)."""
    prompts = [_text(np.asarray(row).reshape(-1)[0]) for row in inputs["prompts"]]
    defaults = SamplingRequest()

    def pick(name: str, default: Any, kind: type) -> Any:
        value = _first(inputs, name)
        return default if value is None else kind(value)

    extras: dict[str, Any] = {}
    for name in ("no_repeat_ngram_size", "task_id"):
        value = _first(inputs, name)
        if value is not None:
            extras[name] = _text(value) if isinstance(value, bytes) else value
    if inputs.get("lora_uids") is not None and inputs["lora_uids"].size:  # the first row's whole list, as NeMo
        extras["lora_uids"] = [_text(v) for v in np.asarray(inputs["lora_uids"])[0].reshape(-1)]
    params = SamplingRequest(
        max_tokens=pick(variant.length_input, defaults.max_tokens, int),
        top_k=pick("top_k", defaults.top_k, int),
        top_p=pick("top_p", defaults.top_p, float),
        temperature=pick("temperature", defaults.temperature, float),
        seed=pick("random_seed", None, int),
        stop_words=_words(inputs, "stop_words_list"),
        bad_words=_words(inputs, "bad_words_list"),
        extras=extras,
    )
    flags = {name: bool(pick(name, False, bool)) for name in _LOGITS_FLAGS}
    return prompts, params, flags


def encode_texts(texts: list[str]) -> NDArray[Any]:
    """``outputs`` as NeMo returns it: UTF-8 bytes, shape ``[B, 1]``."""
    array = np.empty((len(texts), 1), dtype=np.object_)
    for index, text in enumerate(texts):
        array[index, 0] = text.encode("utf-8")
    return array


def error_texts(exc: BaseException, rows: int) -> list[str]:
    """NeMo's in-band error reply, repeated for every row (NeMo v2.4+)."""
    return [f"{ERROR_PREFIX}{exc}"] * rows


def response(texts: list[str], flags: Mapping[str, bool] | None = None) -> dict[str, NDArray[Any]]:
    """The output tensors for one request; requested logits come back as zeros (no real logits here)."""
    out = {"outputs": encode_texts(texts)}
    for flag, output in (("output_generation_logits", "generation_logits"),
                         ("output_context_logits", "context_logits")):
        if flags and flags.get(flag):
            out[output] = np.zeros((len(texts), 1), dtype=np.single)
    return out
