"""Triton's vLLM backend signature (``text_input`` + ``sampling_parameters`` -> ``text_output``), served locally.

Reproduced from triton-inference-server/vllm_backend ``src/model.py`` at commit
8de0c148bda1da25de1e05ffaaf67116dacc7264 (``auto_complete_config``: always decoupled, ``max_batch_size`` 0, the
input and output tensors) and from triton-inference-server/vllm_backend ``src/utils/request.py`` at commit
8de0c148bda1da25de1e05ffaaf67116dacc7264 (``GenerateRequest``; 2026-01-09):

* inputs, each ``[1]`` with no batch dimension: ``text_input`` BYTES; optional ``image``, ``stream`` BOOL,
  ``sampling_parameters`` (a JSON string of vLLM ``SamplingParams`` fields), ``exclude_input_in_output``,
  ``return_finish_reason``, ``return_cumulative_logprob``, ``return_logprobs``, ``return_num_input_tokens``,
  ``return_num_output_tokens`` (BOOL) and ``embedding_request``;
* outputs: ``text_output``, ``finish_reason`` (``"None"`` until the last response), ``cumulative_logprob``,
  ``logprobs`` (JSON), ``num_input_tokens`` UINT32, ``num_output_tokens`` UINT32 — each extra output only when
  its ``return_*`` flag is true;
* ``stream`` true: one response per generated token holding the DELTA and that response's own
  ``num_output_tokens``, the last one flagged final; the prompt is never in front (``exclude_input_in_output``
  false is refused while streaming). ``stream`` false: one final response with the whole text, the prompt in
  front unless ``exclude_input_in_output`` is true;
* ``stop`` is honoured server-side as vLLM does: generation ends at the first stop string, which is left out
  (``include_stop_str_in_output`` keeps it); while streaming, text that could still begin a stop string is held
  back. ``finish_reason`` is ``stop`` (stop string or end of turn) or ``length``. vLLM's defaults apply to unset
  fields (``max_tokens`` 16); an unknown field is an error;
* ``structured_outputs`` / ``guided_decoding`` (``{"json": schema}`` or ``{"json_object": true}``, as an object or
  JSON text) reach the backend as ``extras["json_schema"]`` (the scripted model then answers with a JSON
  instance of the schema, as guided decoding would).

Text comes from any `Backend`'s token stream (`steerlm.serve.token_stats` counts tokens). Requests that share
one call are answered in lockstep (a finished one gets empty deltas until all are done).
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
from steerlm.serve.nemo_infer import backend_executor
from steerlm.serve.registry import Binding
from steerlm.serve.token_stats import count_tokens, distribution, token_id, token_logprob

__all__ = ["INPUTS", "OUTPUTS", "SOURCE", "bind", "parse_sampling"]

SOURCE = "triton-inference-server/vllm_backend@8de0c148bda1da25de1e05ffaaf67116dacc7264"
STREAM_REFUSED = "When streaming, `exclude_input_in_output` = False is not allowed."
Outputs = dict[str, NDArray[Any]]
_FLAGS = ("return_finish_reason", "return_cumulative_logprob", "return_logprobs", "return_num_input_tokens",
          "return_num_output_tokens")
INPUTS = (
    Tensor(name="text_input", shape=(1,), dtype=bytes),
    Tensor(name="image", shape=(-1,), dtype=bytes, optional=True),
    Tensor(name="stream", shape=(1,), dtype=np.bool_, optional=True),
    Tensor(name="sampling_parameters", shape=(1,), dtype=bytes, optional=True),
    Tensor(name="exclude_input_in_output", shape=(1,), dtype=np.bool_, optional=True),
    *(Tensor(name=flag, shape=(1,), dtype=np.bool_, optional=True) for flag in _FLAGS),
    Tensor(name="embedding_request", shape=(1,), dtype=bytes, optional=True),
)
OUTPUTS = (
    Tensor(name="text_output", shape=(-1,), dtype=bytes),
    Tensor(name="finish_reason", shape=(-1,), dtype=bytes),
    Tensor(name="cumulative_logprob", shape=(-1,), dtype=np.float32),
    Tensor(name="logprobs", shape=(-1,), dtype=bytes),
    Tensor(name="num_input_tokens", shape=(1,), dtype=np.uint32),
    Tensor(name="num_output_tokens", shape=(-1,), dtype=np.uint32),
)
# SamplingParams fields this server accepts; those without effect on the local backend are accepted and ignored.
_KNOWN = frozenset({
    "n", "max_tokens", "min_tokens", "temperature", "top_p", "top_k", "min_p", "seed", "stop", "stop_token_ids",
    "include_stop_str_in_output", "ignore_eos", "repetition_penalty", "presence_penalty", "frequency_penalty",
    "logprobs", "prompt_logprobs", "skip_special_tokens", "spaces_between_special_tokens", "lora_name",
    "structured_outputs", "guided_decoding", "detokenize",
})


def _guide_schema(fields: Mapping[str, Any]) -> Any:
    """The JSON schema of ``structured_outputs`` / ``guided_decoding`` (a JSON text or an object), else None."""
    for key in ("structured_outputs", "guided_decoding"):
        value = fields.get(key)
        if isinstance(value, str):
            value = json.loads(value)
        if isinstance(value, Mapping) and value.get("json") is not None:
            schema = value["json"]
            return json.loads(schema) if isinstance(schema, str) else schema
        if isinstance(value, Mapping) and value.get("json_object"):
            return {"type": "object"}
    return None


@dataclass(frozen=True)
class Sampling:
    """The decoded `sampling_parameters`: what the backend gets, plus the stops this layer applies."""

    request: SamplingRequest
    stops: tuple[str, ...]
    keep_stop: bool
    logprobs: int | None  # vLLM's `logprobs`: how many likely tokens to list (None: not asked)


def parse_sampling(raw: str | None) -> Sampling:
    """vLLM's defaults for absent fields; TypeError for an unknown one (as `SamplingParams(**fields)`)."""
    fields: dict[str, Any] = json.loads(raw) if raw else {}
    unknown = sorted(set(fields) - _KNOWN)
    if unknown:
        raise TypeError(f"SamplingParams got an unexpected keyword argument {unknown[0]!r}")
    stop = fields.get("stop") or ()
    stops = (stop,) if isinstance(stop, str) else tuple(str(s) for s in stop)
    top_k = int(fields.get("top_k", 0))
    schema = _guide_schema(fields)
    request = SamplingRequest(max_tokens=int(fields.get("max_tokens", 16)), top_k=top_k if top_k > 0 else 0,
                              top_p=float(fields.get("top_p", 1.0)), temperature=float(fields.get("temperature", 1.0)),
                              seed=None if fields.get("seed") is None else int(fields["seed"]),
                              extras={} if schema is None else {"json_schema": schema})
    logprobs = fields.get("logprobs")
    return Sampling(request, stops, bool(fields.get("include_stop_str_in_output", False)),
                    None if logprobs is None else int(logprobs))


def _first(data: Mapping[str, NDArray[Any]], name: str) -> Any:
    array = data.get(name)
    if array is None or array.size == 0:
        return None
    value = np.asarray(array).reshape(-1)[0]
    return value.item() if isinstance(value, np.generic) else value


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _position(piece: str, listed: int) -> dict[str, dict[str, Any]]:
    """One position of vLLM's logprobs: the sampled token first, then the `listed` likeliest (by rank; the
    sampled one is not repeated), keyed by token id."""
    ranked = distribution(piece)
    entries = [(piece, dict(ranked)[piece], 1 + [t for t, _ in ranked].index(piece))]
    entries += [(t, v, rank) for rank, (t, v) in enumerate(ranked[:listed], start=1) if t != piece]
    out: dict[str, dict[str, Any]] = {}
    for token, value, rank in entries:
        key = token_id(token)
        while str(key) in out:  # a stand-in id collision: the next free id
            key += 1
        out[str(key)] = {"logprob": value, "rank": rank, "decoded_token": token}
    return out


class _Generation:
    """One request's generation: the cut text after each token, and how it ended."""

    def __init__(self, backend: Backend, data: Mapping[str, NDArray[Any]]) -> None:
        self.prompt = _text(_first(data, "text_input"))
        self.stream = bool(_first(data, "stream") or False)
        exclude = _first(data, "exclude_input_in_output")
        self.prepend = (not exclude) if exclude is not None else not self.stream
        if self.prepend and self.stream:
            raise ValueError(STREAM_REFUSED)
        raw = _first(data, "sampling_parameters")
        self.sampling = parse_sampling(_text(raw) if raw is not None else None)
        self.flags = {flag: bool(_first(data, flag) or False) for flag in _FLAGS}
        self.input_tokens = count_tokens(backend, self.prompt)
        self._steps: Iterator[list[str]] = iter(backend.stream([self.prompt], self.sampling.request))
        self.text = ""  # the (cut) text so far
        self.pieces: list[str] = []  # one entry per generated token
        self.reason: str | None = None

    def advance(self) -> bool:
        """Generate one more token; False when the generation had already ended."""
        if self.reason is not None:
            return False
        step = next(self._steps, None)
        if step is None:
            self.reason = "length" if len(self.pieces) >= self.sampling.request.max_tokens else "stop"
            return False
        whole = step[0]
        self.pieces.append(whole[len(self.text):] if whole.startswith(self.text) else whole)
        self.text = whole
        found = [(whole.find(s), s) for s in self.sampling.stops if s in whole]
        if found:
            index, stop = min(found)
            self.text = whole[:index + len(stop)] if self.sampling.keep_stop else whole[:index]
            self.reason = "stop"
        elif len(self.pieces) >= self.sampling.request.max_tokens:
            self.reason = "length"
        return True

    def visible(self) -> str:
        """The text a stream may show now: while unfinished, what could still begin a stop string is held."""
        if self.reason is not None or not self.sampling.stops:
            return self.text
        hold = max(len(s) for s in self.sampling.stops) - 1
        return self.text[:max(0, len(self.text) - hold)]

    def outputs(self, text: str, tokens: Sequence[str], *, final: bool) -> Outputs:
        out: Outputs = {"text_output": np.array([text.encode("utf-8")], dtype=np.object_)}
        if self.flags["return_finish_reason"]:
            out["finish_reason"] = np.array([str(self.reason if final else None).encode()], dtype=np.object_)
        if self.flags["return_cumulative_logprob"]:
            out["cumulative_logprob"] = np.array([sum(token_logprob(p) for p in self.pieces)], dtype=np.float32)
        if self.flags["return_logprobs"]:
            listed = self.sampling.logprobs
            positions = None if listed is None else [_position(p, listed) for p in tokens]
            out["logprobs"] = np.array([json.dumps(positions).encode()], dtype=np.object_)
        if self.flags["return_num_input_tokens"]:
            out["num_input_tokens"] = np.array([self.input_tokens], dtype=np.uint32)
        if self.flags["return_num_output_tokens"]:
            out["num_output_tokens"] = np.array([len(tokens)], dtype=np.uint32)
        return out


class _Responder:
    """Turns one `_Generation` into its responses (deltas when streaming, else one whole answer)."""

    def __init__(self, backend: Backend, request: Any) -> None:
        self.generation = _Generation(backend, getattr(request, "data", request))
        self._sent_text = ""
        self._sent_tokens = 0

    def step(self) -> tuple[Outputs, bool]:
        """The next response and whether the generation has ended."""
        g = self.generation
        if not g.stream:
            while g.advance():
                pass
            return g.outputs((g.prompt if g.prepend else "") + g.text, g.pieces, final=True), True
        g.advance()
        done = g.reason is not None
        visible = g.visible()
        delta, self._sent_text = visible[len(self._sent_text):], visible
        tokens, self._sent_tokens = g.pieces[self._sent_tokens:], len(g.pieces)
        return g.outputs(delta, tokens, final=done), done


def _infer(backend: Backend) -> Any:
    async def infer(requests: Sequence[Any]) -> AsyncIterator[list[Outputs]]:
        loop = asyncio.get_running_loop()
        pool = backend_executor()
        responders = await asyncio.gather(*(loop.run_in_executor(pool, _Responder, backend, r) for r in requests))
        while True:
            steps = await asyncio.gather(*(loop.run_in_executor(pool, r.step) for r in responders))
            responses = [outputs for outputs, _ in steps]
            if all(done for _, done in steps):
                yield FinalResponses(responses)
                return
            yield responses

    return infer


def bind(backend: Any) -> Binding:
    """The decoupled, unbatched (``max_batch_size`` 0) model; its last data response carries the final flag."""
    install()
    return Binding(INPUTS, OUTPUTS, _infer(backend), decoupled=True, batching=False)
