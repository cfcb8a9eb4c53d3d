"""Triton's gRPC protocol messages, built and read with tritonclient's PUBLIC modules only (pure, no I/O).

The gRPC connections talk to `service_pb2_grpc.GRPCInferenceServiceStub` on a channel of their own,
with `service_pb2` messages built here: `infer_request` (numpy arrays → `ModelInferRequest`, BYTES
serialised with `tritonclient.utils.serialize_byte_tensor`, other dtypes as raw little-endian bytes,
exactly what Triton expects in `raw_input_contents`), `outputs_of` (a `ModelInferResponse` → arrays,
through the public `tritonclient.grpc.InferResult`), `config_json` (a `ModelConfigResponse` as the JSON
mapping Triton's HTTP API returns) and `index_states`. The per-parameter-set tensors of a request are
built once and cached in its `FixedInputs` (`prebuilt["grpc"]`). `tests/unit/test_grpc_wire.py`
checks the contract with the installed tritonclient.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
from google.protobuf.json_format import MessageToJson
from tritonclient.grpc import InferResult, service_pb2
from tritonclient.utils import np_to_triton_dtype, serialize_byte_tensor

from steerlm.transport.base import Array, WireRequest

__all__ = ["MAX_MESSAGE_BYTES", "config_json", "index_states", "infer_request", "outputs_of"]

MAX_MESSAGE_BYTES = 2**31 - 1  # what tritonclient allows too (INT32_MAX): prompts and answers are never capped

_KEY = "grpc"  # FixedInputs.prebuilt key


_LENGTH = struct.Struct("<I").pack


def _bytes_contents(array: Array) -> bytes | None:
    """`serialize_byte_tensor`'s bytes for an object array of `bytes` items (each prefixed by its little-endian
    uint32 length, row-major), or None for other items (str, numbers: tritonclient converts those)."""
    if array.size == 1:  # one prompt: the hot path
        item = array.item()
        return _LENGTH(len(item)) + item if type(item) is bytes else None
    items = array.ravel().tolist()
    for item in items:
        if type(item) is not bytes:
            return None
    return b"".join([part for item in items for part in (_LENGTH(len(item)), item)])


def _tensor(name: str, array: Array) -> tuple[service_pb2.ModelInferRequest.InferInputTensor, bytes]:
    array = np.asarray(array)
    if array.dtype == np.object_ and array.size and (contents := _bytes_contents(array)) is not None:
        shape = list(array.shape)
        return service_pb2.ModelInferRequest.InferInputTensor(name=name, datatype="BYTES", shape=shape), contents
    datatype = np_to_triton_dtype(array.dtype)
    tensor = service_pb2.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=list(array.shape))
    if datatype == "BYTES":
        serialized = serialize_byte_tensor(array)
        raw = serialized.item() if serialized is not None and serialized.size > 0 else b""
    else:
        raw = array.tobytes()
    return tensor, raw


def infer_request(request: WireRequest, *, stream: bool = False) -> service_pb2.ModelInferRequest:
    """The `ModelInferRequest` of `request`; `stream` asks for PyTriton's empty final response."""
    fixed = request.fixed
    prebuilt = fixed.prebuilt.get(_KEY)
    if prebuilt is None:
        tensors = [_tensor(name, array) for name, array in fixed.arrays.items()]
        outputs = [service_pb2.ModelInferRequest.InferRequestedOutputTensor(name=n) for n in fixed.outputs]
        prebuilt = fixed.prebuilt[_KEY] = ([t for t, _ in tensors], [raw for _, raw in tensors], outputs)
    proto = service_pb2.ModelInferRequest(model_name=request.model)
    inputs, contents = proto.inputs, proto.raw_input_contents
    for name, array in request.inputs.items():  # the request's own (prompt) tensors first, then the fixed ones
        tensor, raw = _tensor(name, array)
        inputs.append(tensor)
        contents.append(raw)
    inputs.extend(prebuilt[0])
    contents.extend(prebuilt[1])
    proto.outputs.extend(prebuilt[2])
    if stream:
        proto.parameters["triton_enable_empty_final_response"].bool_param = True
    return proto


def outputs_of(response: service_pb2.ModelInferResponse, names: tuple[str, ...]) -> dict[str, Array]:
    """The named outputs the server returned (absent ones are left out)."""
    result = InferResult(response)
    out: dict[str, Array] = {}
    for name in names:
        array = result.as_numpy(name)
        if array is not None:
            out[name] = array
    return out


def config_json(response: service_pb2.ModelConfigResponse) -> dict[str, Any]:
    """The model config as JSON (``{"config": {...}}``, field names as in Triton's model config)."""
    parsed: dict[str, Any] = json.loads(MessageToJson(response, preserving_proto_field_name=True))
    return parsed


def index_states(response: service_pb2.RepositoryIndexResponse) -> dict[str, str]:
    """The repository index as ``{model name: state}`` (``READY``, ``UNAVAILABLE``, ``LOADING``, ...)."""
    return {model.name: model.state for model in response.models}
