"""Triton's HTTP generate extension without a server: JSON bodies (one row, declared dtypes kept), the
incremental SSE parser (any chunking), events, error answers and how `classify` maps them."""

from __future__ import annotations

import http.client
import itertools
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from steerlm.errors import (
    ConfigurationError,
    InvalidRequestError,
    ModelNotFoundError,
    ServerOverloadedError,
    ServerUnavailableError,
    classify,
)
from steerlm.transport.base import FixedInputs, StreamEvent, WireRequest
from steerlm.transport.generate_ext import (
    GenerateError,
    SseParser,
    decode_event,
    error_message,
    request_body,
    stream_path,
)


def _request(inputs: dict[str, np.ndarray], fixed: dict[str, np.ndarray]) -> WireRequest:
    return WireRequest("m", inputs, FixedInputs(fixed, ("outputs",)))


def test_body_keeps_declared_dtypes_scalars_for_one_value_lists_for_more() -> None:
    fixed = {"max_output_len": np.array([[8]], dtype=np.int64), "top_p": np.array([[0.5]], dtype=np.float32),
             "output_context_logits": np.array([[False]]), "random_seed": np.array([[7]], dtype=np.uint64),
             "stop_words": np.array([[b"<extra_id_1>", b"a,b"]], dtype=object)}
    request = _request({"prompts": np.array([["grüße".encode()]], dtype=object)}, fixed)
    body = json.loads(request_body(request))
    assert body == {"prompts": "grüße", "max_output_len": 8, "top_p": 0.5, "output_context_logits": False,
                    "random_seed": 7, "stop_words": ["<extra_id_1>", "a,b"]}
    assert type(body["max_output_len"]) is int and type(body["output_context_logits"]) is bool
    assert "generate_ext" in request.fixed.prebuilt  # the parameter part is converted once
    again = _request({"prompts": np.array([[b"x"]], dtype=object)}, fixed)
    again.fixed.prebuilt.update(request.fixed.prebuilt)
    assert json.loads(request_body(again))["prompts"] == "x"


def test_body_refuses_more_than_one_row_and_non_utf8_bytes() -> None:
    with pytest.raises(ConfigurationError, match="one prompt per request"):
        request_body(_request({"prompts": np.array([[b"a"], [b"b"]], dtype=object)}, {}))
    with pytest.raises(ConfigurationError, match="not UTF-8"):
        request_body(_request({"prompts": np.array([[b"\xff"]], dtype=object)}, {}))


def test_stream_path_quotes_the_model_name() -> None:
    assert stream_path("", "m") == "/v2/models/m/generate_stream"
    assert stream_path("/base", "a b/c") == "/base/v2/models/a%20b%2Fc/generate_stream"


EVENTS = ['{"outputs":"a "}', '{"outputs":"a b"}', '{"outputs":"ü\\n"}']
WIRE = ("".join(f"data: {e}\n\n" for e in EVENTS)).encode()


@given(st.lists(st.integers(min_value=0, max_value=len(WIRE)), max_size=8))
def test_sse_parser_gives_the_same_events_for_any_chunking(cuts: list[int]) -> None:
    parser = SseParser()
    points = sorted(set(cuts) | {0, len(WIRE)})
    got = [e for a, b in itertools.pairwise(points) for e in parser.feed(WIRE[a:b])]
    assert got == EVENTS


def test_sse_parser_handles_crlf_comments_multiline_data_and_other_fields() -> None:
    parser = SseParser()
    wire = b": keep-alive\r\nevent: message\r\ndata: {\"a\":\r\ndata:1}\r\nid: 3\r\n\r\ndata: x"
    assert parser.feed(wire) == ['{"a":\n1}']
    assert parser.feed(b"\n\n") == ["x"]


def test_events_decode_to_one_row_arrays_and_errors_raise() -> None:
    event = decode_event('{"model_name":"m","outputs":"a b","other":1}', ("outputs",))
    assert event.final is False and event.outputs["outputs"].shape == (1, 1)
    assert event.outputs["outputs"][0, 0] == "a b"
    assert decode_event('{"outputs":["x","y"]}', ("outputs",)).outputs["outputs"][0, 0] == "x"
    assert decode_event('{"model_name":"m"}', ("outputs",)) == StreamEvent({}, False)
    with pytest.raises(GenerateError, match="boom") as info:
        decode_event('{"error":"boom"}', ("outputs",))
    assert info.value.status is None
    with pytest.raises(GenerateError, match="not JSON"):
        decode_event("{", ("outputs",))


def test_error_message_from_json_sse_or_text() -> None:
    assert error_message(b'{"error":"Request for unknown model: \'x\' is not found"}').startswith("Request for")
    assert error_message(b'data: {"error":"Traceback (most recent call last):\\n..."}\n\n').startswith("Traceback")
    assert error_message(b"<html>bad gateway</html>") == "<html>bad gateway</html>"
    assert error_message(b"") == "(empty body)"


@pytest.mark.parametrize(("exc", "expected"), [
    (GenerateError("Request for unknown model: 'x' is not found", 404), ModelNotFoundError),
    (GenerateError("Traceback (most recent call last):\n  ...\nValueError: boom\n", 400), InvalidRequestError),
    (GenerateError("Unable to parse 'data': attempt to access JSON non-boolean as boolean", 500),
     InvalidRequestError),
    (GenerateError("busy", 429, {"Retry-After": "2"}), ServerOverloadedError),
    (GenerateError("bad gateway", 502), ServerUnavailableError),
    (GenerateError("Traceback (most recent call last):\nServerFault: late"), InvalidRequestError),  # after a 200
    (http.client.IncompleteRead(b""), ServerUnavailableError),  # the server died mid-body
])
def test_classify_maps_generate_extension_failures(exc: Exception, expected: type) -> None:
    mapped = classify(exc, model="m")
    assert type(mapped) is expected
    if isinstance(mapped, ServerOverloadedError):
        assert mapped.retry_after == 2.0
    if "ValueError: boom" in str(exc):
        assert "ValueError: boom" in str(mapped)
