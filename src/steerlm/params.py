"""Generation parameters shared by every transport: one frozen value object plus `merge`."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from steerlm.errors import ConfigurationError
from steerlm.logprobs import MAX_TOP_LOGPROBS

__all__ = ["PARAM_NAMES", "GenerationParams"]


def _check_int(name: str, value: Any, minimum: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_float(name: str, value: Any, low: float, high: float, *, low_open: bool = False) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ConfigurationError(f"{name} must be a number, got {value!r}")
    if value < low or value > high or (low_open and value == low):
        bracket = "(" if low_open else "["
        raise ConfigurationError(f"{name} must be in {bracket}{low}, {high}], got {value!r}")


def _object_text(name: str, what: str, schema: object) -> str:
    """A JSON object (dict or JSON text) as canonical JSON text; ConfigurationError for anything else."""
    value = schema
    if isinstance(schema, str):
        try:
            value = json.loads(schema)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"{name} must be a {what}, got text that is not JSON: {exc}") from None
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{name} must be a {what} (a dict), got {type(value).__name__}")
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{name} must be a {what} of JSON values: {exc}") from None


def _extra_inputs(value: object) -> tuple[tuple[str, Any], ...]:
    """Extra server inputs (a dict, or name/value pairs) as sorted, hashable pairs."""
    pairs = value.items() if isinstance(value, Mapping) else value
    if not isinstance(pairs, Iterable) or isinstance(pairs, str | bytes):
        raise ConfigurationError(f"extra inputs must be a dict of input name -> value, got {type(value).__name__}")
    out = []
    for pair in pairs:
        if not (isinstance(pair, tuple | list) and len(pair) == 2 and isinstance(pair[0], str) and pair[0]):
            raise ConfigurationError(f"extra inputs must be a dict of input name -> value, got {value!r}")
        out.append((pair[0], _extra_value(pair[0], pair[1])))
    return tuple(sorted(out))


def _extra_value(name: str, value: object, depth: int = 0) -> Any:
    """One extra input's value: a string, number or bool, or a list of them (or of such lists), kept as
    tuples (hashable). The declared dtype and dims are checked when it is sent."""
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple) and depth < 2:
        return tuple(_extra_value(name, item, depth + 1) for item in value)
    raise ConfigurationError(f"extra input {name!r} must be a string, number or bool, or a list of them (or a list "
                             f"of equal-length lists), got {type(value).__name__}")


@dataclass(frozen=True)
class GenerationParams:
    """Sampling and length settings for one request. `None` means "the server's default".

    `stop` holds extra stop strings (the profile's own are added by the client). `logprobs=True` asks the
    server for the log-probability of each generated token (`Completion.logprobs`) where its signature
    can return them. `guided_json` is a JSON schema (a dict, or its JSON text; kept as canonical JSON
    text) that a server with guided decoding constrains the reply to (Triton's vLLM backend, a TRT-LLM
    ensemble that declares ``guided_decoding_guide``, an OpenAI-compatible server's ``response_format``);
    servers without it ignore it, so the prompt must still ask for that JSON (the prompted protocol stays
    the fallback). `guided_strict` is sent as ``response_format.json_schema.strict`` to OpenAI-compatible
    servers (Triton's guided decoding is always strict). `extra_inputs` are further server inputs by name
    (LoRA ids, `min_tokens`, penalties...), sent as declared; a name the model does not declare is a
    ConfigurationError at send time (OpenAI-compatible servers declare nothing: there they are fields of the
    request's JSON body). `extra_body` (a dict, or its JSON text) is merged into an OpenAI-compatible
    request's JSON body (vLLM's ``structured_outputs``, ``min_tokens``...); Triton models refuse it.

    `top_logprobs=N` (0–20) also lists the N most likely tokens at each position and implies `logprobs`;
    asking a signature that cannot return them is a ConfigurationError at send time (never dropped).
    """

    max_tokens: int | None = None
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None
    repetition_penalty: float | None = None
    stop: tuple[str, ...] = field(default=())
    logprobs: bool | None = None
    top_logprobs: int | None = None
    guided_json: str | None = None
    guided_strict: bool | None = None
    extra_inputs: tuple[tuple[str, Any], ...] = ()
    extra_body: str | None = None

    def __post_init__(self) -> None:
        _check_int("max_tokens", self.max_tokens, 1)
        _check_int("top_k", self.top_k, 0)
        _check_int("seed", self.seed, 0)
        _check_float("temperature", self.temperature, 0.0, 100.0)
        _check_float("top_p", self.top_p, 0.0, 1.0)
        _check_float("repetition_penalty", self.repetition_penalty, 1.0, 100.0)
        if self.logprobs is not None and not isinstance(self.logprobs, bool):
            raise ConfigurationError(f"logprobs must be True or False, got {self.logprobs!r}")
        _check_int("top_logprobs", self.top_logprobs, 0)
        if self.top_logprobs is not None and self.top_logprobs > MAX_TOP_LOGPROBS:
            raise ConfigurationError(f"top_logprobs must be at most {MAX_TOP_LOGPROBS}, got {self.top_logprobs}")
        if self.guided_json is not None:
            object.__setattr__(self, "guided_json", _object_text("guided_json", "JSON schema object",
                                                                 self.guided_json))
        if self.guided_strict is not None and not isinstance(self.guided_strict, bool):
            raise ConfigurationError(f"guided_strict must be True or False, got {self.guided_strict!r}")
        if self.extra_body is not None:
            object.__setattr__(self, "extra_body", _object_text("extra_body", "JSON object", self.extra_body))
        object.__setattr__(self, "extra_inputs", _extra_inputs(self.extra_inputs))
        stop = self.stop
        if isinstance(stop, str):
            stop = (stop,)
        stop = tuple(stop or ())
        if not all(isinstance(s, str) and s for s in stop):
            raise ConfigurationError(f"stop must be a list of non-empty strings, got {self.stop!r}")
        object.__setattr__(self, "stop", tuple(dict.fromkeys(stop)))

    @property
    def wants_logprobs(self) -> bool:
        """Whether log-probabilities are asked for (`logprobs=True`, or any `top_logprobs`)."""
        return bool(self.logprobs) or self.top_logprobs is not None

    @property
    def top_count(self) -> int:
        """How many alternatives to report per position (0 unless `top_logprobs` is set)."""
        return self.top_logprobs or 0

    def merge(self, **overrides: Any) -> GenerationParams:
        """Return a copy with every non-None override applied; `stop` overrides replace the list."""
        unknown = set(overrides) - set(PARAM_NAMES)
        if unknown:
            raise ConfigurationError(
                f"unknown generation parameter(s) {sorted(unknown)}; known: {list(PARAM_NAMES)}"
            )
        changes = {k: v for k, v in overrides.items() if v is not None}
        if "stop" in changes and isinstance(changes["stop"], str):
            changes["stop"] = (changes["stop"],)
        if "stop" in changes:
            changes["stop"] = tuple(changes["stop"])
        return replace(self, **changes) if changes else self

    def with_stop(self, extra: Iterable[str]) -> GenerationParams:
        """Return a copy whose stop list also holds `extra` (order kept, duplicates dropped)."""
        return replace(self, stop=tuple(dict.fromkeys((*self.stop, *extra))))


PARAM_NAMES: tuple[str, ...] = tuple(f.name for f in fields(GenerationParams))
