"""The request-body fields of an OpenAI-compatible request that are not sampling tensors. Pure.

* `response_format`: `GenerationParams.guided_json` as OpenAI's ``response_format`` — ``{"type":
  "json_object"}`` (JSON mode) for the bare object schema ``{"type": "object"}``, else ``{"type":
  "json_schema", "json_schema": {"name", "schema", "strict"}}`` (``strict`` only when
  `GenerationParams.guided_strict` is set; the name is the schema's ``title``, cut to OpenAI's
  ``[a-zA-Z0-9_-]{1,64}``, else "response"). vLLM, trtllm-serve and NIM enforce it with guided decoding.
* `extra_fields`: `GenerationParams.extra_inputs` and `extra_body` (vLLM's ``structured_outputs`` /
  ``guided_json``, ``min_tokens``, ``repetition_penalty``...), merged into the body. A field steerlm sets
  itself (``model``, ``prompt``, ``max_tokens``, a set sampling field, ``stop``, ``stream``,
  ``response_format``...) or one given twice is a ConfigurationError: nothing is overwritten silently.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from steerlm.errors import ConfigurationError
from steerlm.params import GenerationParams

__all__ = ["ALWAYS_SET", "extra_fields", "response_format"]

ALWAYS_SET = frozenset({"model", "prompt", "max_tokens", "stream", "stream_options"})
_NAME = re.compile(r"[^a-zA-Z0-9_-]+")


def response_format(guided_json: str, strict: bool | None) -> dict[str, Any]:
    """OpenAI's ``response_format`` for a guided-decoding schema (canonical JSON text)."""
    schema = json.loads(guided_json)
    if schema == {"type": "object"} and not strict:
        return {"type": "json_object"}
    title = schema.get("title")
    name = _NAME.sub("_", title)[:64] if isinstance(title, str) and _NAME.sub("", title) else "response"
    spec: dict[str, Any] = {"name": name, "schema": schema}
    if strict is not None:
        spec["strict"] = strict
    return {"type": "json_schema", "json_schema": spec}


def extra_fields(params: GenerationParams, taken: Iterable[str]) -> dict[str, Any]:
    """The extra inputs and `extra_body` fields of `params`; ConfigurationError for a field in `taken` (set by
    steerlm) or given both as an extra input and in `extra_body`."""
    fields: dict[str, Any] = dict(params.extra_inputs)
    for name, value in json.loads(params.extra_body or "{}").items():
        if name in fields:
            raise ConfigurationError(f"request field {name!r} is given both as an extra input (model_kwargs / "
                                     "additional_kwargs) and in extra_body; give it once")
        fields[name] = value
    clash = sorted(set(fields) & set(taken))
    if clash:
        raise ConfigurationError(
            f"extra request field(s) {clash} would overwrite what steerlm sets ({sorted(taken)}); set them "
            "through their own parameters (max_tokens, temperature, top_p, top_k, seed, stop, logprobs, "
            "guided_json) instead of extra_body / model_kwargs")
    return fields
