"""Contract with the installed tritonclient's PUBLIC gRPC modules (no private API is used): the
messages `steerlm.transport.grpc_wire` builds are what Triton reads, and responses decode through
`tritonclient.grpc.InferResult`. The real wire is tested against PyTriton in tests/integration."""

from __future__ import annotations

import grpc
import numpy as np
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import deserialize_bytes_tensor, serialize_byte_tensor

from steerlm.transport.base import FixedInputs, WireRequest
from steerlm.transport.grpc_wire import config_json, index_states, infer_request, outputs_of


def request() -> WireRequest:
    prompts = np.array([[b"hi"], ["caf\u00e9".encode()]], dtype=object)
    fixed = FixedInputs({"max_output_len": np.array([[5], [5]], dtype=np.int64),
                         "temperature": np.array([[0.5], [0.5]], dtype=np.float32)}, ("outputs",))
    return WireRequest("m", {"prompts": prompts}, fixed)


def test_the_stub_has_every_method_the_connections_call() -> None:
    channel = grpc.insecure_channel("127.0.0.1:9")  # never used: making a stub does not connect
    try:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        for name in ("ModelReady", "ModelConfig", "RepositoryIndex", "ModelInfer", "ModelStreamInfer"):
            assert callable(getattr(stub, name))
    finally:
        channel.close()


def test_infer_request_carries_every_tensor_in_raw_contents() -> None:
    wire = request()
    proto = infer_request(wire, stream=True)
    assert proto.model_name == "m"
    assert [(t.name, t.datatype, list(t.shape)) for t in proto.inputs] == [
        ("prompts", "BYTES", [2, 1]), ("max_output_len", "INT64", [2, 1]), ("temperature", "FP32", [2, 1])]
    prompts, length, temperature = proto.raw_input_contents
    assert [bytes(v) for v in deserialize_bytes_tensor(prompts)] == [b"hi", "caf\u00e9".encode()]
    assert np.frombuffer(length, dtype=np.int64).tolist() == [5, 5]
    assert np.frombuffer(temperature, dtype=np.float32).tolist() == [0.5, 0.5]
    assert [o.name for o in proto.outputs] == ["outputs"]
    assert proto.parameters["triton_enable_empty_final_response"].bool_param
    again = infer_request(wire)  # the fixed tensors are built once and reused, unchanged
    assert "grpc" in wire.fixed.prebuilt and len(again.inputs) == 3
    assert "triton_enable_empty_final_response" not in again.parameters


def test_bytes_tensors_are_serialised_exactly_as_tritonclient_does() -> None:
    """The fast path for object arrays of bytes (prompts, stop words) and tritonclient's own function
    (other items: str, numbers) give the same raw contents, row-major, empty items included."""
    cases = [np.array([[b"hi"], [b""], ["caf\u00e9".encode()]], dtype=object),
             np.array([[b"a", b"bc"], [b"", b"d"]], dtype=object),
             np.array([["text"], [b"bytes"]], dtype=object),
             np.array([[3], [b"x"]], dtype=object),
             np.array([["caf\u00e9".encode()]], dtype=object), np.array([[b""]], dtype=object),  # one item
             np.array([["text"]], dtype=object), np.array([[7]], dtype=object)]
    for array in cases:
        wire = WireRequest("m", {"prompts": array}, FixedInputs({}, ("outputs",)))
        proto = infer_request(wire)
        assert proto.raw_input_contents[0] == serialize_byte_tensor(array).item()
        assert (proto.inputs[0].datatype, list(proto.inputs[0].shape)) == ("BYTES", list(array.shape))


def test_responses_config_and_index_decode() -> None:
    response = service_pb2.ModelInferResponse(model_name="m")
    response.outputs.add(name="outputs", datatype="BYTES", shape=[1, 1])
    response.raw_output_contents.append(b"\x05\x00\x00\x00hello")
    assert outputs_of(response, ("outputs", "missing"))["outputs"].tolist() == [[b"hello"]]
    config = service_pb2.ModelConfigResponse()
    config.config.name = "m"
    config.config.max_batch_size = 8
    tensor = config.config.input.add(name="prompts", data_type=13, dims=[-1])  # 13 = TYPE_STRING
    assert tensor.name == "prompts"
    as_json = config_json(config)["config"]
    assert as_json["name"] == "m" and as_json["max_batch_size"] == 8
    assert as_json["input"][0]["data_type"] == "TYPE_STRING" and [int(d) for d in as_json["input"][0]["dims"]] == [-1]
    index = service_pb2.RepositoryIndexResponse()
    index.models.add(name="a", state="READY")
    index.models.add(name="b", state="UNAVAILABLE")
    assert index_states(index) == {"a": "READY", "b": "UNAVAILABLE"}
