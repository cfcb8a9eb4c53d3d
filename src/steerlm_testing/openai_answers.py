"""What the OpenAI-compatible test double answers: the pure half (no sockets).

Two flavours, each reproduced from its server's source:

* ``vllm`` — vLLM's OpenAI server (``vllm/entrypoints/openai/serving_completion.py``): a prompt or a
  list of prompts, one choice per prompt (``index``); ``max_tokens`` defaults to 16; a stop string
  ends generation and is **left out** of the text, with ``finish_reason: "stop"`` and
  ``stop_reason: <the stop string>``; the end-of-turn marker is the model's EOS token: left out too,
  ``stop_reason: null``; an over-long request is refused with 400 "This model's maximum context length
  is N tokens. However, you requested M tokens (…)"; an unknown model is 404 "The model `x` does
  not exist."; usage is the total of the request;
* ``nemo-ray`` — NeMo Export-Deploy's Ray Serve HF deployable (``nemo_deploy/llm/hf_deployable_ray.py``
  at 914daa6, 2026-07): ``POST /v1/completions/`` only; ``stop`` and ``stream`` are ignored (a JSON
  answer always); the prompt is wrapped as ``prompts=[prompt]`` (a list prompt fails: HTTP 500
  "Error during inference: …"); ``max_tokens`` defaults to 256; ``finish_reason`` is "length" when the
  text has at least ``max_tokens`` *characters*, else "stop" (as the source computes it); usage counts
  whitespace-separated words.

Text comes from the scripted test model (`ScriptedBackend`: ``[[say=...]]`` and friends). Tokens are
the scripted model's tokens (`steerlm_testing.directives.tokenize`). Asked for ``logprobs: N``, vLLM's
flavour gives each generated token its log-probability in the local server's next-token distribution
(`steerlm.serve.token_stats.distribution`: a normalised log-softmax) and, in ``top_logprobs``, the N likeliest
tokens plus the sampled one (vLLM's legacy-completions shape).
The vLLM flavour honours guided decoding generically (`guided_schema`: ``response_format`` json_schema /
json_object, ``structured_outputs``, ``guided_json``): the reply is a JSON instance of the schema. NeMo Ray
ignores them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from steerlm.serve.backend import SamplingRequest
from steerlm.serve.token_stats import distribution, token_logprob
from steerlm_testing.directives import tokenize
from steerlm_testing.scripted import END_OF_TURN, ScriptedBackend, cumulative_steps

__all__ = ["Choice", "Refusal", "context_refusal", "error_body", "guided_schema", "ray_answer", "token_logprob",
           "vllm_answer", "vllm_choice", "vllm_stream"]


class Refusal(Exception):
    """An HTTP error answer: `status` and a JSON `body`."""

    def __init__(self, status: int, body: Mapping[str, Any]) -> None:
        super().__init__(f"[{status}] {body}")
        self.status = status
        self.body = body


def error_body(message: str, kind: str, code: int | str, param: str | None = None) -> dict[str, Any]:
    """An error in the OpenAI / vLLM shape ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


@dataclass(frozen=True)
class Choice:
    """One prompt's answer: the deltas streamed (joined: the text), why it ended, token counts."""

    deltas: tuple[str, ...]
    finish_reason: str
    stop_reason: str | None
    prompt_tokens: int
    completion_tokens: int

    @property
    def text(self) -> str:
        return "".join(self.deltas)


def _logprobs(deltas: Sequence[str], listed: int, start: int = 0) -> dict[str, Any]:
    """vLLM's legacy-completions ``logprobs`` object for `deltas` (one token each; `start`: the text offset
    of the first)."""
    offsets = [start + sum(len(d) for d in deltas[:i]) for i in range(len(deltas))]
    tops = [dict(distribution(d)[:max(listed, 1)]) for d in deltas]  # the sampled token is the likeliest here
    return {"tokens": list(deltas), "token_logprobs": [token_logprob(d) for d in deltas], "text_offset": offsets,
            "top_logprobs": tops}


def _steps(backend: ScriptedBackend, prompt: str, max_tokens: int, stops: Sequence[str],
           schema: Mapping[str, Any] | None = None) -> list[str]:
    extras = {} if schema is None else {"json_schema": dict(schema)}
    tokens = backend.plan(prompt, SamplingRequest(max_tokens=max_tokens, extras=extras))[1]
    return cumulative_steps(tokens, SamplingRequest(max_tokens=max_tokens, stop_words=tuple(stops)))


def guided_schema(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """The JSON schema vLLM's completions endpoint constrains the reply to: ``response_format``
    (``json_schema`` / ``json_object``), ``structured_outputs: {"json": ...}`` or the older ``guided_json``;
    None when none is asked for. A malformed one is refused with 400, as vLLM's request validation does."""
    fmt = body.get("response_format")
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_object":
        return {"type": "object"}
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema", spec.get("json_schema")) if isinstance(spec, Mapping) else None
        if not isinstance(schema, dict) or not isinstance(spec.get("name"), str):  # type: ignore[union-attr]
            raise Refusal(400, error_body("response_format.json_schema needs a 'name' and a 'schema' object",
                                          "BadRequestError", 400, "response_format"))
        return schema
    if fmt is not None and not (isinstance(fmt, Mapping) and fmt.get("type") == "text"):
        raise Refusal(400, error_body(f"unsupported response_format {fmt!r}", "BadRequestError", 400,
                                      "response_format"))
    outputs = body.get("structured_outputs")
    guided = outputs.get("json") if isinstance(outputs, Mapping) else body.get("guided_json")
    if isinstance(guided, str):
        guided = json.loads(guided)
    return guided if isinstance(guided, dict) else None


def vllm_choice(backend: ScriptedBackend, prompt: str, max_tokens: int, stops: Sequence[str],
                schema: Mapping[str, Any] | None = None) -> Choice:
    """vLLM's answer to one prompt (see the module docstring), guided to `schema` when given."""
    steps = _steps(backend, prompt, max_tokens, stops, schema)
    text = steps[-1] if steps else ""
    cut, reason, stop_reason = len(text), "length" if len(steps) >= max_tokens else "stop", None
    found = [(text.find(s), s) for s in (*stops, END_OF_TURN) if s and s in text]
    if found:
        cut, stop = min(found)
        reason, stop_reason = "stop", (stop if stop in stops else None)
    deltas, previous = [], ""
    for step in steps:
        delta = step[len(previous):cut] if len(previous) < cut else ""
        previous = step
        if delta:
            deltas.append(delta)
    return Choice(tuple(deltas), reason, stop_reason, len(tokenize(prompt)), len(steps))


def context_refusal(prompt_tokens: int, max_tokens: int, limit: int) -> Refusal | None:
    """vLLM's 400 for a request longer than the model's context window, else None."""
    total = prompt_tokens + max_tokens
    if total <= limit:
        return None
    return Refusal(400, error_body(
        f"This model's maximum context length is {limit} tokens. However, you requested {total} tokens "
        f"({prompt_tokens} in the messages, {max_tokens} in the completion). Please reduce the length of the "
        "messages or completion.", "BadRequestError", 400))


def _usage(choices: Sequence[Choice]) -> dict[str, int]:
    prompt = sum(c.prompt_tokens for c in choices)
    completion = sum(c.completion_tokens for c in choices)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def vllm_chunk(model: str, choices: Sequence[Mapping[str, Any]], usage: Mapping[str, int] | None = None) -> str:
    """One SSE event of a vLLM completions stream."""
    data = {"id": "cmpl-double", "object": "text_completion", "created": int(time.time()), "model": model,
            "choices": list(choices), "usage": dict(usage) if usage is not None else None}
    return f"data: {json.dumps(data)}\n\n"


def vllm_answer(model: str, choices: Sequence[Choice], logprobs: int | None) -> dict[str, Any]:
    """The JSON answer of a non-streamed vLLM completions request."""
    return {"id": "cmpl-double", "object": "text_completion", "created": int(time.time()), "model": model,
            "choices": [{"index": i, "text": c.text,
                         "logprobs": None if logprobs is None else _logprobs(c.deltas, logprobs),
                         "finish_reason": c.finish_reason, "stop_reason": c.stop_reason}
                        for i, c in enumerate(choices)],
            "usage": _usage(choices)}


def vllm_stream(model: str, choice: Choice, include_usage: bool, logprobs: int | None) -> list[str]:
    """The SSE events of a streamed vLLM answer, ``data: [DONE]`` last."""
    starts = [sum(len(d) for d in choice.deltas[:i]) for i in range(len(choice.deltas))]
    events = [vllm_chunk(model, [{"index": 0, "text": d,
                                  "logprobs": None if logprobs is None else _logprobs([d], logprobs, at),
                                  "finish_reason": None, "stop_reason": None}])
              for d, at in zip(choice.deltas, starts, strict=True)]
    events.append(vllm_chunk(model, [{"index": 0, "text": "", "logprobs": None,
                                      "finish_reason": choice.finish_reason, "stop_reason": choice.stop_reason}]))
    if include_usage:
        events.append(vllm_chunk(model, [], _usage([choice])))
    return [*events, "data: [DONE]\n\n"]


def ray_answer(backend: ScriptedBackend, model: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """NeMo Ray's HF deployable answer (see the module docstring); raises `Refusal` as it would."""
    prompts = [body["prompt"]] if "prompt" in body else list(body.get("prompts", []))
    max_tokens = int(body.get("max_tokens", 256))
    if not all(isinstance(p, str) for p in prompts):
        raise Refusal(500, {"detail": "Error during inference: TypeError: text input must be of type `str`"})
    texts = []
    for prompt in prompts:
        steps = _steps(backend, prompt, max_tokens, ())
        texts.append(steps[-1] if steps else "")
    prompt_words = sum(len(p.split()) for p in prompts)
    completion_words = sum(len(t.split()) for t in texts)
    reason = "length" if texts and len(texts[0]) >= max_tokens else "stop"
    return {"id": f"cmpl-{int(time.time())}", "object": "text_completion", "created": int(time.time()),
            "model": model, "choices": [{"text": " ".join(texts), "index": 0, "logprobs": None,
                                         "finish_reason": reason}],
            "usage": {"prompt_tokens": prompt_words, "completion_tokens": completion_words,
                      "total_tokens": prompt_words + completion_words}}
