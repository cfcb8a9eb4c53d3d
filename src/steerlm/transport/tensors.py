"""Tensor helpers shared by the signature codecs: declared-dtype scalars, BYTES matrices, text rows. Pure numpy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from tritonclient.utils import triton_to_np_dtype

from steerlm.errors import ConfigurationError
from steerlm.transport.base import Array, TensorSpec

__all__ = ["bytes_matrix", "np_dtype", "rows_to_text", "scalar_array"]


def rows_to_text(array: Array) -> list[str]:
    """One string per batch row (first element of each row), bytes decoded as UTF-8."""
    arr = np.asarray(array)
    if arr.size == 1:
        flat = [arr.item()]
    elif arr.ndim == 1:
        flat = list(arr)
    else:
        flat = list(arr.reshape(arr.shape[0], -1)[:, 0])
    return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in flat]


def np_dtype(spec: TensorSpec) -> Any:
    """The numpy dtype of a declared tensor (object for BYTES)."""
    dtype = triton_to_np_dtype(spec.datatype)
    if dtype is None:
        raise ConfigurationError(f"input {spec.name!r} has a datatype steerlm cannot send: {spec.datatype}")
    return np.object_ if dtype is np.object_ or spec.datatype == "BYTES" else dtype


def scalar_array(spec: TensorSpec, value: Any, batch: int) -> Array:
    """A `[batch, 1]` array of `value` in the declared dtype, range-checked for integer types."""
    dtype = np_dtype(spec)
    if dtype is np.object_:
        item = value.encode("utf-8") if isinstance(value, str) else value
        arr = np.empty((batch, 1), dtype=np.object_)
        arr.fill(item)
        return arr
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        if not info.min <= int(value) <= info.max:
            raise ConfigurationError(
                f"{spec.name}={value!r} does not fit the model's declared {spec.datatype} input"
            )
    return np.full((batch, 1), value, dtype=dtype)


def bytes_matrix(rows: Sequence[Sequence[str]]) -> Array:
    """A `[len(rows), n]` BYTES array (n = longest row; short rows padded with empty strings)."""
    width = max((len(r) for r in rows), default=0) or 1
    arr = np.empty((len(rows), width), dtype=np.object_)
    arr.fill(b"")
    for i, row in enumerate(rows):
        for j, item in enumerate(row):
            arr[i, j] = item.encode("utf-8")
    return arr
