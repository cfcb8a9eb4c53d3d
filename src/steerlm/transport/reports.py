"""What a server reports about each answer besides its text: finish reason, token counts, log-probabilities.

Codecs read these from optional outputs (`finish_reason`, `num_input_tokens`, `num_output_tokens`,
`log_probs`, …) into one `ServerReport` per prompt; a stream updates the same reports response by
response. Pure: numpy in, plain values out.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from steerlm.transport.base import Array
from steerlm.usage import TokenUsage

__all__ = ["RawAnswer", "ServerReport", "counts", "json_logprobs", "reasons", "row_floats"]


@dataclass
class ServerReport:
    """One prompt's server-side facts; None where the server did not say."""

    finish_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    logprobs: list[float] | None = field(default=None)

    @property
    def usage(self) -> TokenUsage | None:
        """Token usage when the server reported both counts."""
        if self.input_tokens is None or self.output_tokens is None:
            return None
        return TokenUsage(self.input_tokens, self.output_tokens)

    def add_logprobs(self, values: Sequence[float]) -> None:
        self.logprobs = [*(self.logprobs or ()), *values]


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


def _chosen(entry: Any) -> float | None:
    """The log-probability of the generated token in one position's JSON entry.

    Two shapes exist: ``{"token": logprob, ...}`` sorted by rank (NeMo's vLLM exporter) and
    ``{"token_id": {"logprob": x, "rank": r, ...}, ...}`` (Triton's vLLM backend). The generated token is
    always present; when more than the top token is listed it is the last one by rank.
    """
    if not isinstance(entry, dict) or not entry:
        return None
    values = list(entry.values())
    if all(isinstance(v, dict) for v in values):
        best = max(values, key=lambda v: v.get("rank") or 0)
        logprob = best.get("logprob")
        return float(logprob) if isinstance(logprob, int | float) else None
    last = values[-1]
    return float(last) if isinstance(last, int | float) else None


def json_logprobs(array: Array, rows: int) -> list[list[float]]:
    """Per-row log-probabilities from JSON cells: one cell per position (NeMo's vLLM exporter, padded
    with ``0``) or one cell holding a list of positions (Triton's vLLM backend)."""
    arr = np.asarray(array, dtype=np.object_)
    arr = arr.reshape(arr.shape[0], -1) if arr.ndim > 1 else arr.reshape(-1, 1) if rows > 1 else arr.reshape(1, -1)
    out: list[list[float]] = []
    for row in arr[:rows]:
        values: list[float] = []
        for cell in row:
            try:
                parsed = json.loads(cell.decode("utf-8") if isinstance(cell, bytes) else str(cell))
            except ValueError:
                continue
            for entry in parsed if isinstance(parsed, list) else [parsed]:
                value = _chosen(entry)
                if value is not None:
                    values.append(value)
        out.append(values)
    return out


@dataclass(frozen=True)
class RawAnswer:
    """One prompt's uncleaned text as the server sent it (prompt echo already removed) and its report."""

    text: str
    report: ServerReport
