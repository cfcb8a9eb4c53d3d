"""The request log: every request a model receives, appended to a JSON-lines file.

One line per Triton request (before the model runs), for example::

    {"model": "nemo-v2.0", "inputs": {"prompts": {"datatype": "BYTES", "shape": [1, 1],
     "data": ["Hi"]}, "max_output_len": {"datatype": "INT64", "shape": [1, 1], "data": [16]}},
     "parameters": {}}

``data`` is the tensor flattened in row-major order; BYTES become str (UTF-8, invalid bytes replaced).
"""

from __future__ import annotations

import inspect
import json
import os
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["REQUEST_LOG_ENV", "RequestLog", "describe_tensor", "with_request_log"]

REQUEST_LOG_ENV = "STEERLM_REQUEST_LOG"

_DATATYPES = {
    "bool": "BOOL", "int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64",
    "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32", "uint64": "UINT64",
    "float16": "FP16", "float32": "FP32", "float64": "FP64",
}


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


def describe_tensor(array: NDArray[Any]) -> dict[str, Any]:
    """The Triton datatype, shape and flattened Python values of one tensor."""
    array = np.asarray(array)
    kind = array.dtype.kind
    datatype = "BYTES" if kind in "OSU" else _DATATYPES.get(array.dtype.name, array.dtype.name.upper())
    return {
        "datatype": datatype,
        "shape": list(array.shape),
        "data": [_plain(v) for v in array.reshape(-1).tolist()],
    }


class RequestLog:
    """Appends one JSON line per request; safe to share between threads."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()
        self._lock = threading.Lock()

    def record(self, model: str, requests: Sequence[Any]) -> None:
        lines = []
        for request in requests:
            data: Mapping[str, NDArray[Any]] = getattr(request, "data", request)
            entry = {
                "model": model,
                "inputs": {name: describe_tensor(array) for name, array in data.items()},
                "parameters": dict(getattr(request, "parameters", None) or {}),
            }
            lines.append(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write("".join(lines))
            handle.flush()


def with_request_log(infer: Any, log: RequestLog | None, model: str) -> Any:
    """Wrap an infer function so each call first records its requests; keeps the function's kind
    (plain, coroutine, generator, async generator), which PyTriton inspects."""
    if log is None:
        return infer
    if inspect.isasyncgenfunction(infer):

        async def agen(requests: Sequence[Any]) -> AsyncIterator[Any]:
            log.record(model, requests)
            async for item in infer(requests):
                yield item

        return agen
    if inspect.iscoroutinefunction(infer):

        async def coro(requests: Sequence[Any]) -> Any:
            log.record(model, requests)
            return await infer(requests)

        return coro
    if inspect.isgeneratorfunction(infer):

        def gen(requests: Sequence[Any]) -> Iterator[Any]:
            log.record(model, requests)
            yield from infer(requests)

        return gen

    def plain(requests: Sequence[Any]) -> Any:
        log.record(model, requests)
        return infer(requests)

    return plain
