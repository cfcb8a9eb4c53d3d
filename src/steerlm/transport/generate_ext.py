"""Triton's HTTP generate extension, streaming form: the pure half (body, SSE parsing, events, errors).

`POST /v2/models/<model>/generate_stream` takes one JSON object whose top-level keys name input
tensors, and answers ``text/event-stream``: one ``data: {...}`` event per model response, whose
top-level keys name output tensors. It is how Triton serves decoupled (streaming-only) models over
HTTP (its ``/infer`` endpoint answers them ``[501]``). What Triton 2.51 accepts, observed with the
local server (PyTriton 0.7, inputs with `max_batch_size` > 0 and dims ``[-1]``/``[1]``):

* a JSON scalar becomes a ``[1,1]`` tensor, a list of n values ``[1,n]`` (one batch row: the extension
  has no batching, so the client plans one prompt per request); strings for BYTES, integers for
  INT32/INT64/UINT32/UINT64, numbers for FP32 (an integer is accepted there too), ``true``/``false``
  for BOOL. A float for an INT64 input or ``0`` for a BOOL is refused with HTTP 500 ``Unable to parse
  'data': attempt to access JSON non-signed-integer as signed-integer``, so values keep their declared
  dtype (the codec already cast them);
* errors before the first response: a 4xx/5xx status whose body is ``{"error": "..."}``, as JSON or as
  one SSE event (an exception raised by a PyTriton model: HTTP 400 with a ``data: {"error": ...}``
  event holding the traceback); an unknown model is HTTP 404;
* an error after the first response arrives as a ``data: {"error": "..."}`` event on the 200 stream;
* the stream ends with the body: no event carries Triton's final flag, and PyTriton's empty final
  response produces no event. A connection lost mid-body is a truncated chunked body (an error), not
  an end.

Errors are raised as `GenerateError` (``status``, ``message``, ``headers``: the shape
`steerlm.errors.classify` reads); the connections map them there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import numpy as np

from steerlm.errors import ConfigurationError
from steerlm.transport.base import Array, StreamEvent, WireRequest

__all__ = ["GenerateError", "SseParser", "decode_event", "error_message", "request_body", "stream_path"]

_KEY = "generate_ext"  # FixedInputs.prebuilt key of the JSON values of the per-parameter-set inputs


class GenerateError(Exception):
    """An ``{"error": ...}`` answer of the generate extension; `status` is None for an in-stream event."""

    def __init__(self, message: str, status: int | None = None, headers: Any = None) -> None:
        super().__init__(f"[{status}] {message}" if status is not None else message)
        self.status = status
        self.message = message
        self.headers: Any = headers if headers is not None else {}  # `.get` (case-insensitive for HTTP)


def stream_path(base: str, model: str) -> str:
    """The request path for `model` under an endpoint's base path (``""`` or ``/prefix``)."""
    return f"{base}/v2/models/{quote(model, safe='')}/generate_stream"


def _values(name: str, array: Array) -> Any:
    arr = np.asarray(array)
    if arr.ndim == 0 or arr.shape[0] != 1:
        raise ConfigurationError(f"the HTTP generate extension carries one prompt per request; input {name!r} "
                                 f"has shape {list(arr.shape)}")
    row = arr.reshape(1, -1)[0].tolist()
    try:
        row = [v.decode("utf-8") if isinstance(v, bytes) else v for v in row]
    except UnicodeDecodeError:
        raise ConfigurationError(f"input {name!r} is not UTF-8 text; JSON cannot carry it") from None
    return row[0] if len(row) == 1 else row


def request_body(request: WireRequest) -> bytes:
    """The JSON body of one request (one batch row): each input by name, a scalar or a list of values."""
    fixed = request.fixed.prebuilt.get(_KEY)
    if fixed is None:
        fixed = request.fixed.prebuilt[_KEY] = {n: _values(n, a) for n, a in request.fixed.arrays.items()}
    body = {name: _values(name, array) for name, array in request.inputs.items()}
    body.update(fixed)
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


class SseParser:
    """Incremental ``text/event-stream`` parser: bytes in, the ``data`` of each complete event out."""

    __slots__ = ("_data", "_rest")

    def __init__(self) -> None:
        self._rest = b""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[str]:
        lines = (self._rest + chunk).split(b"\n")
        self._rest = lines.pop()
        events: list[str] = []
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if self._data:
                    events.append("\n".join(self._data))
                    self._data = []
                continue
            field, _, value = line.partition(b":")
            if field == b"data":
                self._data.append(value.removeprefix(b" ").decode("utf-8", "replace"))
        return events


def _first_text(value: Any) -> Any:
    while isinstance(value, list):
        if not value:
            return ""
        value = value[0]
    return value


def decode_event(payload: str, outputs: tuple[str, ...]) -> StreamEvent:
    """One event's outputs as ``[1,1]`` arrays; an ``{"error": ...}`` event raises `GenerateError`."""
    try:
        data = json.loads(payload)
    except ValueError:
        raise GenerateError(f"the server sent an event that is not JSON: {payload[:200]!r}") from None
    if not isinstance(data, Mapping):
        raise GenerateError(f"the server sent an unexpected event: {payload[:200]!r}")
    if "error" in data:
        raise GenerateError(str(data["error"]))
    out: dict[str, Array] = {}
    for name in outputs:
        if name in data:
            cell = np.empty((1, 1), dtype=np.object_)
            cell[0, 0] = _first_text(data[name])
            out[name] = cell
    return StreamEvent(outputs=out, final=False)


def error_message(raw: bytes) -> str:
    """The message of an error answer: ``{"error": ...}`` as JSON or as SSE events, else the text."""
    text = raw.decode("utf-8", "replace").strip()
    candidates = [text]
    if text.startswith("data:"):
        candidates = SseParser().feed(raw + b"\n\n")
    for candidate in candidates:
        try:
            data = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(data, Mapping) and "error" in data:
            return str(data["error"])
    return text[:500] or "(empty body)"
