"""numpy arrays → tritonclient request objects, with the per-parameter-set part built only once.

Shared by the four connections: gRPC and HTTP tritonclient modules have the same `InferInput` /
`InferRequestedOutput` API, so one function serves both (keyed by protocol in `FixedInputs.prebuilt`).
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from tritonclient.utils import np_to_triton_dtype

from steerlm.transport.base import Array, WireRequest

__all__ = ["build_inputs", "read_outputs"]


_DATATYPES: dict[Any, str] = {}


def _datatype(dtype: Any) -> str:
    name = _DATATYPES.get(dtype)
    if name is None:
        name = _DATATYPES[dtype] = np_to_triton_dtype(dtype)
    return name


def _input(module: ModuleType, name: str, array: Array) -> Any:
    tensor = module.InferInput(name, list(array.shape), _datatype(array.dtype))
    tensor.set_data_from_numpy(array)
    return tensor


def build_inputs(module: ModuleType, key: str, request: WireRequest) -> tuple[list[Any], list[Any]]:
    """(`InferInput`s, `InferRequestedOutput`s) for `request`; the fixed part is cached under `key`.

    The cached objects are only read by tritonclient when it serialises a request, so concurrent
    requests can share them.
    """
    fixed = request.fixed
    prebuilt = fixed.prebuilt.get(key)
    if prebuilt is None:
        prebuilt = (
            [_input(module, name, array) for name, array in fixed.arrays.items()],
            [module.InferRequestedOutput(name) for name in fixed.outputs],
        )
        fixed.prebuilt[key] = prebuilt
    inputs = [_input(module, name, array) for name, array in request.inputs.items()]
    inputs.extend(prebuilt[0])
    return inputs, prebuilt[1]


def read_outputs(result: Any, names: tuple[str, ...]) -> dict[str, Array]:
    """The named outputs of an `InferResult` that the server actually returned."""
    out: dict[str, Array] = {}
    for name in names:
        array = result.as_numpy(name)
        if array is not None:
            out[name] = array
    return out

