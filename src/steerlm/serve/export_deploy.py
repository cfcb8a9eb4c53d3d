"""NeMo Export-Deploy's PyTriton signatures (``prompts`` -> ``sentences``), as its deployables declare them.

Each deployable is reproduced from its source at commit 914daa6b21a27814a28b449f7b0a61e0fb7b7c75 (2026-07-21):

* ``megatron``: reproduced from NVIDIA-NeMo/Export-Deploy ``nemo_deploy/llm/megatronllm_deployable.py`` at commit
  914daa6b21a27814a28b449f7b0a61e0fb7b7c75 (``get_triton_input`` / ``get_triton_output`` / ``triton_infer_fn``):
  ``max_length`` = tokens to generate (default 256), ``top_k`` 1, ``top_p`` 0.0, ``temperature`` 1.0;
  ``random_seed`` and ``max_batch_size`` are declared but not used; ``compute_logprob``
  returns FP32 ``log_probs`` ``[B, T]``, ``n_top_logprobs=N`` BYTES ``top_logprobs`` (per row one JSON list of
  ``{token: logprob}``, the N likeliest per generated token; checked against the source at commit
  06af474f85375e57ea0be3271ca4138be976acc9); ``apply_chat_template`` makes the server parse each prompt as JSON
  messages; ``echo`` puts the prompt in front. Failures are Triton errors (no in-band text).
* ``hf``: reproduced from NVIDIA-NeMo/Export-Deploy ``nemo_deploy/llm/hf_deployable.py`` at commit
  914daa6b21a27814a28b449f7b0a61e0fb7b7c75: ``max_length`` = ``max_new_tokens`` (default 256; the source
  declares it twice, declared once here), ``output_logits`` / ``output_scores`` (raw scores, not served here);
  failures come back in-band as ONE row ``An error occurred: <msg>``.
* ``vllm``: reproduced from NVIDIA-NeMo/Export-Deploy ``nemo_export/vllm_exporter.py`` at commit
  914daa6b21a27814a28b449f7b0a61e0fb7b7c75: ``max_tokens`` (default 16), ``min_tokens``, ``seed``,
  ``n_log_probs`` -> BYTES ``log_probs`` (one JSON ``{token: logprob}`` per generated token, rows padded with
  ``0``), ``n_prompt_log_probs``; failures in-band as one row.

All three are unary (``DeployPyTriton`` binds ``triton_infer_fn`` with ``max_batch_size``; none has a streaming
infer function), read every scalar from the first row (``@first_value``), take no stop words and never echo
unless asked. Text comes from any `Backend`; generation ends at the backend's own end of turn or the length.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pytriton.model_config import Tensor

from steerlm.serve.backend import Backend, SamplingRequest, ServerFault
from steerlm.serve.nemo_infer import backend_executor
from steerlm.serve.registry import Binding
from steerlm.serve.token_stats import distribution, token_logprob, token_pieces

__all__ = ["DEPLOYABLES", "SOURCE", "Deployable", "bind_hf", "bind_megatron", "bind_vllm"]

SOURCE = "NVIDIA-NeMo/Export-Deploy@914daa6b21a27814a28b449f7b0a61e0fb7b7c75"
ERROR_PREFIX = "An error occurred: "
Outputs = dict[str, NDArray[Any]]


def _opt(name: str, dtype: Any) -> Tensor:
    return Tensor(name=name, shape=(-1,), dtype=dtype, optional=True)


_PROMPTS = Tensor(name="prompts", shape=(-1,), dtype=bytes)
_SENTENCES = Tensor(name="sentences", shape=(-1,), dtype=bytes)
_COMMON = (_opt("top_k", np.int_), _opt("top_p", np.single), _opt("temperature", np.single))


@dataclass(frozen=True)
class Deployable:
    """One deployable's declared tensors and server-side defaults."""

    name: str
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    length_input: str
    default_length: int
    default_top_p: float
    in_band_errors: bool


DEPLOYABLES: dict[str, Deployable] = {
    "megatron": Deployable(
        "megatron",
        (_PROMPTS, _opt("max_length", np.int_), _opt("max_batch_size", np.int_), *_COMMON,
         _opt("random_seed", np.int_), _opt("compute_logprob", np.bool_), _opt("apply_chat_template", np.bool_),
         _opt("n_top_logprobs", np.int_), _opt("echo", np.bool_)),
        (_SENTENCES, Tensor(name="log_probs", shape=(-1,), dtype=np.single),
         Tensor(name="top_logprobs", shape=(-1,), dtype=bytes)),
        "max_length", 256, 0.0, in_band_errors=False),
    "hf": Deployable(
        "hf",
        (_PROMPTS, _opt("max_length", np.int_), _opt("max_batch_size", np.int_), *_COMMON,
         _opt("random_seed", np.int_), _opt("output_logits", np.bool_), _opt("output_scores", np.bool_)),
        (_SENTENCES, Tensor(name="logits", shape=(-1,), dtype=np.single),
         Tensor(name="scores", shape=(-1,), dtype=np.single)),
        "max_length", 256, 0.0, in_band_errors=True),
    "vllm": Deployable(
        "vllm",
        (_PROMPTS, _opt("max_tokens", np.int_), _opt("min_tokens", np.int_), *_COMMON, _opt("seed", np.int_),
         _opt("n_log_probs", np.int_), _opt("n_prompt_log_probs", np.int_)),
        (_SENTENCES, Tensor(name="log_probs", shape=(-1,), dtype=bytes),
         Tensor(name="prompt_log_probs", shape=(-1,), dtype=bytes)),
        "max_tokens", 16, 0.1, in_band_errors=True),
}


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _first(data: Mapping[str, NDArray[Any]], name: str, default: Any = None) -> Any:
    array = data.get(name)
    if array is None or array.size == 0:
        return default
    value = np.asarray(array).reshape(-1)[0]
    return value.item() if isinstance(value, np.generic) else value


def _bytes_rows(texts: Sequence[str]) -> NDArray[Any]:
    out = np.empty((len(texts), 1), dtype=np.object_)
    out[:, 0] = [t.encode("utf-8") for t in texts]
    return out


def _padded(rows: list[list[Any]], fill: Any, dtype: Any) -> NDArray[Any]:
    width = max((len(r) for r in rows), default=0) or 1
    out = np.full((len(rows), width), fill, dtype=dtype)
    for index, row in enumerate(rows):
        out[index, :len(row)] = row
    return out


def _logprob_outputs(kind: Deployable, pieces: list[list[str]], values: bool, top: int) -> Outputs:
    """Megatron: FP32 ``log_probs`` (the generated tokens' values, ``[0]`` for an empty row, as the source does)
    when `values`, and ``top_logprobs`` (per row one JSON list of ``{token: logprob}``, the `top` likeliest)
    when `top`; vLLM exporter: ``log_probs``, one JSON ``{token: logprob}`` of the `top` likeliest per position
    (rows padded with ``0``)."""
    out: Outputs = {}
    if kind.name == "megatron":
        if values:
            out["log_probs"] = _padded([[token_logprob(p) for p in row] or [0.0] for row in pieces], 0.0, np.float32)
        if top:
            out["top_logprobs"] = _bytes_rows([json.dumps([dict(distribution(p)[:top]) for p in row])
                                               for row in pieces])
        return out
    cells = [[json.dumps(dict(distribution(p)[:top])).encode("utf-8") for p in row] for row in pieces]
    out["log_probs"] = _padded(cells, b"0", np.object_)
    return out


def _generate(backend: Backend, kind: Deployable, data: Mapping[str, NDArray[Any]]) -> Outputs:
    prompts = [_text(np.asarray(row).reshape(-1)[0]) for row in data["prompts"]]
    if _first(data, "apply_chat_template", False):  # the server reads each prompt as JSON chat messages
        prompts = [json.loads(p) for p in prompts]
        raise ValueError("this local server has no chat template; send rendered prompts")
    params = SamplingRequest(
        max_tokens=int(_first(data, kind.length_input, kind.default_length)),
        top_k=int(_first(data, "top_k", 1)), top_p=float(_first(data, "top_p", kind.default_top_p)),
        temperature=float(_first(data, "temperature", 1.0)),
        seed=None if _first(data, "seed") is None else int(_first(data, "seed")),
    )
    values = bool(_first(data, "compute_logprob", False))
    top = int(_first(data, "n_top_logprobs", 0) or 0) or int(_first(data, "n_log_probs", 0) or 0)
    logprobs = values or top > 0
    if logprobs:
        steps = list(backend.stream(prompts, params))
        texts = list(steps[-1]) if steps else [""] * len(prompts)
    else:
        texts = backend.generate(prompts, params)
    if _first(data, "echo", False):
        texts = [p + t for p, t in zip(prompts, texts, strict=True)]
    out = {"sentences": _bytes_rows(texts)}
    if logprobs:
        out.update(_logprob_outputs(kind, token_pieces(steps, len(prompts)), values, top))
    return out


def _answer(backend: Backend, kind: Deployable, request: Any) -> Outputs:
    data: Mapping[str, NDArray[Any]] = getattr(request, "data", request)
    try:
        return _generate(backend, kind, data)
    except ServerFault:
        raise
    except Exception as exc:
        if not kind.in_band_errors:
            raise
        return {"sentences": _bytes_rows([f"{ERROR_PREFIX}{exc}"])}  # one row, whatever the batch


def _builder(name: str) -> Any:
    def build(backend: Any) -> Binding:
        kind = DEPLOYABLES[name]

        async def infer(requests: Sequence[Any]) -> list[Outputs]:
            loop = asyncio.get_running_loop()
            jobs = [loop.run_in_executor(backend_executor(), _answer, backend, kind, r) for r in requests]
            return list(await asyncio.gather(*jobs))

        return Binding(kind.inputs, kind.outputs, infer)

    return build


bind_megatron = _builder("megatron")
bind_hf = _builder("hf")
bind_vllm = _builder("vllm")
