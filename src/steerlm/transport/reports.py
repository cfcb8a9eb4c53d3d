"""What a server reports about each answer besides its text: finish reason, token counts, log-probabilities.

Codecs read these from optional outputs (`finish_reason`, `num_input_tokens`, `num_output_tokens`,
`log_probs`, …) into one `ServerReport` per prompt; a stream updates the same reports response by
response. Pure: numpy in, plain values out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from steerlm.errors import ConfigurationError
from steerlm.logprobs import TokenLogprob
from steerlm.params import GenerationParams
from steerlm.transport.base import Array, ModelSpec
from steerlm.usage import TokenUsage

__all__ = [
    "LOGPROB_SERVERS",
    "RawAnswer",
    "ServerReport",
    "check_logprobs",
    "counts",
    "json_logprobs",
    "reasons",
    "row_floats",
    "value_entries",
]


@dataclass
class ServerReport:
    """One prompt's server-side facts; None where the server did not say."""

    finish_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    logprobs: list[TokenLogprob] | None = field(default=None)

    @property
    def usage(self) -> TokenUsage | None:
        """Token usage when the server reported both counts."""
        if self.input_tokens is None or self.output_tokens is None:
            return None
        return TokenUsage(self.input_tokens, self.output_tokens)

    def add_logprobs(self, values: Sequence[TokenLogprob]) -> None:
        if self.logprobs is None:
            self.logprobs = list(values)
        else:
            self.logprobs.extend(values)


def _rows(array: Array, rows: int) -> list[Any]:
    """The first element of each of `rows` rows; a scalar or one-element array serves every row."""
    arr = np.asarray(array)
    if arr.size == 1:
        return [arr.reshape(-1)[0]] * rows
    flat = arr.reshape(arr.shape[0], -1)[:, 0] if arr.ndim > 1 else arr
    return list(flat[:rows])


def reasons(array: Array, rows: int) -> list[str | None]:
    """Finish reasons per row; vLLM's ``"None"`` (an unfinished stream step) and empty cells become None."""
    out: list[str | None] = []
    for value in _rows(array, rows):
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        out.append(None if text in ("", "None", "null") else text)
    return out


def counts(array: Array, rows: int) -> list[int | None]:
    """Integer counts per row (a non-numeric cell becomes None)."""
    out: list[int | None] = []
    for value in _rows(array, rows):
        try:
            out.append(int(value.decode("ascii") if isinstance(value, bytes) else value))
        except (TypeError, ValueError):
            out.append(None)
    return out


def row_floats(array: Array, rows: int) -> list[list[float]]:
    """A numeric `[B, T]` array as one list of floats per row."""
    arr = np.asarray(array, dtype=np.float64)
    arr = arr.reshape(rows, -1) if arr.size else np.zeros((rows, 0))
    return [[float(v) for v in row] for row in arr[:rows]]


def value_entries(array: Array, rows: int) -> list[list[TokenLogprob]]:
    """The chosen tokens' values of a numeric `[B, T]` output (no token text: `steerlm.logprobs.align`)."""
    return [[TokenLogprob("", v) for v in row] for row in row_floats(array, rows)]


def _position(entry: Any) -> TokenLogprob | None:
    """One position's entry, its listed tokens most likely first.

    Two shapes exist: ``{"token": logprob, ...}`` sorted by rank (NeMo's Megatron and vLLM exporter; the
    generated token is not marked, so it is named later from the text: `steerlm.logprobs.align`) and
    ``{"token_id": {"logprob": x, "rank": r, "decoded_token": t}, ...}`` (Triton's vLLM backend), where the
    first entry is the sampled token (vLLM builds each position's dict from the sampled id, then the top ids).
    """
    if not isinstance(entry, dict) or not entry:
        return None
    values = list(entry.values())
    if all(isinstance(v, dict) for v in values):
        known = [v for v in values if isinstance(v.get("logprob"), int | float)]
        if not known:
            return None
        ranked = sorted(known, key=lambda v: v.get("rank") or 0)
        listed = tuple((str(v.get("decoded_token") or ""), float(v["logprob"])) for v in ranked)
        first = known[0]
        return TokenLogprob(str(first.get("decoded_token") or ""), float(first["logprob"]), listed)
    listed = tuple((str(k), float(v)) for k, v in entry.items()
                   if isinstance(v, int | float) and not isinstance(v, bool))
    return TokenLogprob("", math.nan, listed) if listed else None


def _parsed(cell: Any) -> Any:
    try:
        return json.loads(cell.decode("utf-8") if isinstance(cell, bytes) else str(cell))
    except ValueError:
        return None


def json_logprobs(array: Array, rows: int) -> list[list[TokenLogprob]]:
    """Per-row entries from JSON cells: one cell per position (NeMo's vLLM exporter, padded with ``0``) or
    one cell holding a list of positions (Megatron's ``top_logprobs``, Triton's vLLM backend)."""
    arr = np.asarray(array, dtype=np.object_)
    arr = arr.reshape(arr.shape[0], -1) if arr.ndim > 1 else arr.reshape(-1, 1) if rows > 1 else arr.reshape(1, -1)
    out: list[list[TokenLogprob]] = []
    for row in arr[:rows]:
        positions: list[TokenLogprob] = []
        for cell in row:
            parsed = _parsed(cell)
            for entry in parsed if isinstance(parsed, list) else [parsed]:
                position = _position(entry)
                if position is not None:
                    positions.append(position)
        out.append(positions)
    return out


LOGPROB_SERVERS = ("NeMo Export-Deploy's Megatron and vLLM deployables, Triton's vLLM backend, and "
                   "OpenAI-compatible servers (openai+http://)")


def check_logprobs(spec: ModelSpec, signature: str, params: GenerationParams, takes: bool, takes_top: bool) -> None:
    """ConfigurationError when `params` asks for log-probabilities the model cannot return (never silently
    dropped: the caller asked for them), saying which servers return them."""
    if not params.wants_logprobs:
        return
    if not takes:
        raise ConfigurationError(
            f"model {spec.name!r} ({signature} signature) returns no log-probabilities; unset logprobs / "
            f"top_logprobs, or use a server that returns them: {LOGPROB_SERVERS}. The server declares "
            f"{spec.describe()}")
    if params.top_count and not takes_top:
        raise ConfigurationError(
            f"model {spec.name!r} ({signature} signature) returns the generated tokens' log-probabilities but "
            f"no top_logprobs; unset top_logprobs (servers that list them: {LOGPROB_SERVERS})")


@dataclass(frozen=True)
class RawAnswer:
    """One prompt's uncleaned text as the server sent it (prompt echo already removed) and its report."""

    text: str
    report: ServerReport
