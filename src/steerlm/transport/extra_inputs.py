"""Extra server inputs (`GenerationParams.extra_inputs`: ``model_kwargs`` / ``additional_kwargs``) as tensors.

A scalar becomes ``[B, 1]`` in the declared dtype (as every parameter does). A list (or a list of
equal-length lists) becomes one row of values repeated for every prompt: the row's shape follows the
declared dims (without the batch dimension) — dims ``[-1]`` take ``[n]``, dims ``[1, -1]`` or ``[-1, -1]``
take ``[1, n]`` (a flat list) or ``[m, n]`` (a list of lists) — so the wire shape is ``[B, n]`` / ``[B, 1, n]``,
or the row alone for a model without a batch dimension (``max_batch_size`` 0). Every element must suit the
declared dtype: strings for BYTES, integers (not bools) in range for INT/UINT, numbers for FP, bools for
BOOL; a fixed dim must match the list's length. Anything else is a ConfigurationError that says what the
model declares. Pure numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from steerlm.errors import ConfigurationError
from steerlm.transport.base import Array, TensorSpec
from steerlm.transport.tensors import np_dtype, scalar_array

__all__ = ["extra_array"]


def _kind(datatype: str) -> tuple[str, tuple[type, ...]]:
    if datatype == "BYTES":
        return "strings", (str, bytes)
    if datatype == "BOOL":
        return "bools", (bool,)
    if datatype.startswith(("INT", "UINT")):
        return "integers", (int,)
    return "numbers", (int, float)


def _check_elements(spec: TensorSpec, flat: Sequence[Any]) -> None:
    what, types = _kind(spec.datatype)
    for index, item in enumerate(flat):
        is_bool = isinstance(item, bool)
        if not isinstance(item, types) or (is_bool and spec.datatype != "BOOL"):
            raise ConfigurationError(
                f"extra input {spec.name!r} is declared {spec.datatype}: every element must be one of the "
                f"{what}, got {type(item).__name__} {item!r} at position {index}")
    if what == "integers" and flat:
        info = np.iinfo(np_dtype(spec))
        bad = next((v for v in flat if not info.min <= v <= info.max), None)
        if bad is not None:
            raise ConfigurationError(f"extra input {spec.name!r}: {bad} does not fit the declared {spec.datatype}")


def _row_shape(spec: TensorSpec, value: Sequence[Any]) -> tuple[tuple[int, ...], list[Any]]:
    """The shape of one row and its elements, flattened (ConfigurationError: ragged, or unlike the dims)."""
    nested = [isinstance(v, list | tuple) for v in value]
    if any(nested) and not all(nested):
        raise ConfigurationError(f"extra input {spec.name!r} mixes lists and single values: {list(value)!r}")
    if all(nested) and value:
        widths = {len(v) for v in value}
        if len(widths) != 1 or 0 in widths:
            raise ConfigurationError(f"extra input {spec.name!r} is ragged (rows of {sorted(widths)} values); "
                                     "every inner list must have the same, non-zero length")
        if any(isinstance(x, list | tuple) for v in value for x in v):
            raise ConfigurationError(f"extra input {spec.name!r}: at most two levels of lists are sent")
        shape: tuple[int, ...] = (len(value), widths.pop())
        flat = [x for v in value for x in v]
    else:
        shape, flat = (len(value),), list(value)
    dims = spec.dims
    if len(shape) == 1 and len(dims) == 2:
        shape = (1, *shape)
    if len(shape) != len(dims) or any(d not in (-1, n) for d, n in zip(dims, shape, strict=True)):
        raise ConfigurationError(
            f"extra input {spec.name!r} is declared with dims {list(dims)} (per prompt); a value of shape "
            f"{list(shape)} does not fit it")
    return shape, flat


def extra_array(spec: TensorSpec, value: Any, batch: int, *, batched: bool = True) -> Array:
    """The tensor of one extra input (see the module docstring)."""
    if not isinstance(value, list | tuple):
        return scalar_array(spec, value, batch)
    if not value:
        raise ConfigurationError(f"extra input {spec.name!r} is an empty list; leave it out instead")
    shape, flat = _row_shape(spec, value)
    _check_elements(spec, flat)
    dtype = np_dtype(spec)
    items = [v.encode("utf-8") if isinstance(v, str) else v for v in flat] if dtype is np.object_ else flat
    row = np.empty(len(items), dtype=np.object_) if dtype is np.object_ else np.empty(len(items), dtype=dtype)
    row[:] = items
    row = row.reshape(shape)
    return np.broadcast_to(row, (batch, *shape)).copy() if batched else row
