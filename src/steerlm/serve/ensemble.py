"""The TensorRT-LLM backend ``ensemble`` signature (``text_input`` → ``text_output``; REFERENCE §3d).

Variants, declared as ``all_models/inflight_batcher_llm/ensemble/config.pbtxt`` declares them:

* ``int32`` (tensorrtllm_backend v0.12–v0.18): ``text_input`` BYTES ``[1]`` and ``max_tokens`` INT32
  required; ``bad_words``/``stop_words`` BYTES ``[-1]`` (one plain string per word), INT32 ``end_id``,
  ``pad_id``, ``top_k``, ``min_length``, ``beam_width``, FP32 penalties, ``top_p``, ``temperature``,
  UINT64 ``random_seed``, BOOL ``stream`` and ``return_*`` flags, all optional;
* ``uint32`` (v0.6.0): the same integers as **UINT32** and ``text_input`` ``[-1]``;
* ``v0_5`` (v0.5.0): UINT32, and ``bad_words``/``stop_words`` **required**; ``text_output`` ``[-1,-1]``;
* ``guided`` (v0.17+): ``int32`` plus the optional BYTES ``[1]`` inputs ``guided_decoding_guide_type``
  ("json_schema", "json", "regex", "ebnf_grammar") and ``guided_decoding_guide`` (the schema / regex /
  grammar), as tensorrtllm_backend declares them (commit c1b90df5, read at c2e65b88). A "json_schema" guide
  reaches the backend as ``extras["json_schema"]`` (the scripted model answers with an instance of it), a
  "json" one as the schema ``{"type": "object"}``; "regex" and "ebnf_grammar" guides are passed on as
  ``extras["guide_type"]`` / ``extras["guide"]``. A guide that is not a JSON schema object fails the request
  like TRT-LLM's xgrammar compiler would.

Outputs: ``text_output`` — one element per prompt, shape ``[B]`` (TRT-LLM's postprocessing model returns a
flat list per request, whatever the declared dims); non-streamed text starts with the prompt (TRT-LLM's
default ``exclude_input_in_output=false``) — plus ``cum_log_probs`` ``[B,1]`` and ``output_log_probs``
``[B,1,1]`` (zeros).

Streaming (decoupled twin, ``stream=[[true]]``): one response per generated token holding the DELTA,
no prompt; the LAST DATA response carries the final flag (`steerlm.serve.final_flag`), as TRT-LLM
sends it (``bind_int32_streaming_empty_final``: PyTriton's usual separate EMPTY final response instead,
as a BLS or PyTriton front end may send). ``stream=false`` on the decoupled twin gives one final response
with the whole echoed text; ``stream=true`` on the unary model fails like TRT-LLM ("Streaming is only
supported if model is deployed using decoupled mode."). Text comes from the `Backend` behind it (any
text model); errors are Triton errors (TRT-LLM has no in-band error text). Requests merged by the
dynamic batcher are streamed in lockstep: a request that has finished gets empty deltas until all have.
To know which response is the last, a stream looks one token ahead, so each delta leaves the server one
token's time late (the whole stream ends on time).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pytriton.model_config import Tensor

from steerlm.serve.backend import Backend, SamplingRequest
from steerlm.serve.final_flag import FinalResponses, install
from steerlm.serve.registry import Binding

__all__ = [
    "NOT_DECOUPLED_MESSAGE",
    "VARIANTS",
    "EnsembleVariant",
    "bind_guided",
    "bind_guided_streaming",
    "bind_int32",
    "bind_int32_streaming",
    "bind_int32_streaming_empty_final",
    "bind_uint32",
    "bind_uint32_streaming",
    "bind_uint32_streaming_empty_final",
    "bind_v0_5",
    "decode_request",
]

GUIDE_TYPE = "guided_decoding_guide_type"
GUIDE = "guided_decoding_guide"
NOT_DECOUPLED_MESSAGE = "Streaming is only supported if model is deployed using decoupled mode."
Outputs = dict[str, NDArray[Any]]


@dataclass(frozen=True)
class EnsembleVariant:
    name: str
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]


def _inputs(ints: Any, *, words_required: bool, text_dims: tuple[int, ...], guided: bool = False
            ) -> tuple[Tensor, ...]:
    def opt(name: str, dtype: Any, shape: tuple[int, ...] = (1,)) -> Tensor:
        return Tensor(name=name, shape=shape, dtype=dtype, optional=True)

    return (
        Tensor(name="text_input", shape=text_dims, dtype=bytes),
        Tensor(name="max_tokens", shape=(1,), dtype=ints),
        Tensor(name="bad_words", shape=(-1,), dtype=bytes, optional=not words_required),
        Tensor(name="stop_words", shape=(-1,), dtype=bytes, optional=not words_required),
        *(opt(n, ints) for n in ("end_id", "pad_id", "top_k", "min_length", "beam_width")),
        *(opt(n, np.float32) for n in ("top_p", "temperature", "length_penalty", "repetition_penalty",
                                       "presence_penalty", "frequency_penalty")),
        opt("random_seed", np.uint64),
        *(opt(n, np.bool_) for n in ("return_log_probs", "return_context_logits", "return_generation_logits",
                                     "stream")),
        *((opt(GUIDE_TYPE, bytes), opt(GUIDE, bytes)) if guided else ()),
    )


def _outputs(text_dims: tuple[int, ...]) -> tuple[Tensor, ...]:
    return (
        Tensor(name="text_output", shape=text_dims, dtype=bytes),
        Tensor(name="cum_log_probs", shape=(-1,), dtype=np.float32),
        Tensor(name="output_log_probs", shape=(-1, -1), dtype=np.float32),
    )


VARIANTS: dict[str, EnsembleVariant] = {
    "int32": EnsembleVariant("int32", _inputs(np.int32, words_required=False, text_dims=(1,)), _outputs((-1,))),
    "uint32": EnsembleVariant("uint32", _inputs(np.uint32, words_required=False, text_dims=(-1,)),
                              _outputs((-1,))),
    "v0_5": EnsembleVariant("v0_5", _inputs(np.uint32, words_required=True, text_dims=(-1,)),
                            _outputs((-1, -1))),
    "guided": EnsembleVariant("guided", _inputs(np.int32, words_required=False, text_dims=(1,), guided=True),
                              _outputs((-1,))),
}


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _first(data: Mapping[str, NDArray[Any]], name: str) -> Any:
    array = data.get(name)
    if array is None or array.size == 0:
        return None
    value = np.asarray(array).reshape(-1)[0]
    return value.item() if isinstance(value, np.generic) else value


def _words(data: Mapping[str, NDArray[Any]], name: str) -> tuple[str, ...]:
    array = data.get(name)
    if array is None or array.size == 0:
        return ()
    row = np.asarray(array).reshape(array.shape[0], -1)[0]
    return tuple(w for w in (_text(v) for v in row) if w)


def _guide(data: Mapping[str, NDArray[Any]]) -> dict[str, Any]:
    """The backend extras of a guided-decoding request (see the module docstring), else {}."""
    kind, guide = _first(data, GUIDE_TYPE), _first(data, GUIDE)
    if kind is None:
        return {}
    kind, text = _text(kind), None if guide is None else _text(guide)
    if kind == "json":
        return {"json_schema": {"type": "object"}}
    if kind == "json_schema":
        try:
            schema = json.loads(text or "")
        except json.JSONDecodeError as exc:
            raise ValueError(f"guided_decoding_guide is not a JSON schema: {exc}") from None
        if not isinstance(schema, dict):
            raise ValueError("guided_decoding_guide is not a JSON schema object")
        return {"json_schema": schema}
    if kind in ("regex", "ebnf_grammar"):
        return {"guide_type": kind, "guide": text}
    raise ValueError(f"unknown guided_decoding_guide_type {kind!r}; use json, json_schema, regex or ebnf_grammar")


def decode_request(data: Mapping[str, NDArray[Any]]) -> tuple[list[str], SamplingRequest, bool]:
    """Prompts, sampling parameters (first row) and the ``stream`` flag of one request."""
    prompts = [_text(np.asarray(row).reshape(-1)[0]) for row in data["text_input"]]
    defaults = SamplingRequest()

    def pick(name: str, default: Any, kind: type) -> Any:
        value = _first(data, name)
        return default if value is None else kind(value)

    extras = {n: _first(data, n) for n in ("beam_width", "length_penalty", "repetition_penalty", "end_id")
              if _first(data, n) is not None}
    extras.update(_guide(data))
    params = SamplingRequest(
        max_tokens=pick("max_tokens", defaults.max_tokens, int),
        top_k=pick("top_k", defaults.top_k, int),
        top_p=pick("top_p", defaults.top_p, float),
        temperature=pick("temperature", defaults.temperature, float),
        seed=pick("random_seed", None, int),
        stop_words=_words(data, "stop_words"),
        bad_words=_words(data, "bad_words"),
        extras=extras,
    )
    return prompts, params, bool(pick("stream", False, bool))


def _response(texts: Sequence[str], variant: EnsembleVariant) -> Outputs:
    """One request's outputs. Like TRT-LLM's postprocessing model, ``text_output`` is FLAT: one element
    per prompt (and beam), shape ``[B]`` whatever the declared dims."""
    rows = len(texts)
    text = np.empty((rows,), dtype=np.object_)
    text[:] = [t.encode("utf-8") for t in texts]
    return {
        "text_output": text,
        "cum_log_probs": np.zeros((rows, 1), dtype=np.float32),
        "output_log_probs": np.zeros((rows, 1, 1), dtype=np.float32),
    }


def _data(request: Any) -> Mapping[str, NDArray[Any]]:
    data: Mapping[str, NDArray[Any]] = getattr(request, "data", request)
    return data


def _unary_answer(backend: Backend, variant: EnsembleVariant, request: Any) -> Outputs:
    prompts, params, stream = decode_request(_data(request))
    if stream:
        raise ValueError(NOT_DECOUPLED_MESSAGE)
    texts = backend.generate(prompts, params)
    return _response([p + t for p, t in zip(prompts, texts, strict=True)], variant)


def _unary(backend: Backend, variant: EnsembleVariant) -> Any:
    async def infer(requests: Sequence[Any]) -> list[Outputs]:
        loop = asyncio.get_running_loop()
        jobs = [loop.run_in_executor(None, _unary_answer, backend, variant, r) for r in requests]
        return list(await asyncio.gather(*jobs))

    return infer


class _Steps:
    """The text rows of one request's responses: deltas when streaming, else one echoed answer."""

    def __init__(self, backend: Backend, request: Any) -> None:
        prompts, params, self.stream = decode_request(_data(request))
        self.rows = len(prompts)
        self._prompts = prompts
        self._seen = [""] * self.rows
        self._iterator: Iterator[list[str]] | None = (
            iter(backend.stream(prompts, params)) if self.stream else None)
        self._whole: list[str] | None = None if self.stream else backend.generate(prompts, params)

    def next(self) -> list[str] | None:
        if self._whole is not None:
            whole, self._whole = self._whole, None
            return [p + t for p, t in zip(self._prompts, whole, strict=True)]
        if self._iterator is None:
            return None
        try:
            texts = next(self._iterator)
        except StopIteration:
            self._iterator = None
            return None
        deltas = [t[len(s):] for t, s in zip(texts, self._seen, strict=True)]
        self._seen = list(texts)
        return deltas


def _decoupled(backend: Backend, variant: EnsembleVariant, *, final_with_data: bool = True) -> Any:
    last = FinalResponses if final_with_data else list

    async def infer(requests: Sequence[Any]) -> AsyncIterator[list[Outputs]]:
        loop = asyncio.get_running_loop()
        steps = await asyncio.gather(*(loop.run_in_executor(None, _Steps, backend, r) for r in requests))
        pending = list(await asyncio.gather(*(loop.run_in_executor(None, s.next) for s in steps)))
        while True:
            current = [texts if texts is not None else [""] * s.rows for s, texts in zip(steps, pending,
                                                                                         strict=True)]
            pending = list(await asyncio.gather(*(loop.run_in_executor(None, s.next) for s in steps)))
            responses = [_response(texts, variant) for texts in current]
            if all(p is None for p in pending):
                yield last(responses)
                return
            yield responses

    return infer


def _builder(variant_name: str, *, decoupled: bool, final_with_data: bool = True) -> Any:
    def build(backend: Any) -> Binding:
        variant = VARIANTS[variant_name]
        if decoupled:
            if final_with_data:
                install()
            infer = _decoupled(backend, variant, final_with_data=final_with_data)
            return Binding(variant.inputs, variant.outputs, infer, decoupled=True)
        return Binding(variant.inputs, variant.outputs, _unary(backend, variant))

    return build


bind_int32 = _builder("int32", decoupled=False)
bind_int32_streaming = _builder("int32", decoupled=True)
bind_int32_streaming_empty_final = _builder("int32", decoupled=True, final_with_data=False)
bind_uint32 = _builder("uint32", decoupled=False)
bind_uint32_streaming = _builder("uint32", decoupled=True)
bind_uint32_streaming_empty_final = _builder("uint32", decoupled=True, final_with_data=False)
bind_v0_5 = _builder("v0_5", decoupled=False)
bind_guided = _builder("guided", decoupled=False)
bind_guided_streaming = _builder("guided", decoupled=True)
