"""PyTriton infer functions for the NeMo deploy signature, unary and decoupled (streaming).

Both are asynchronous: the backend runs in a worker thread, so a slow or sleeping request does not
block the handler's event loop. Each Triton request in a dynamically batched list is decoded and
answered on its own (its own first row, its own in-band error); `ServerFault` fails the whole call.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from numpy.typing import NDArray

from steerlm.serve.backend import Backend, ServerFault
from steerlm.serve.nemo_deploy import NemoVariant, decode_request, error_texts, response, rows_of

__all__ = ["make_streaming_infer", "make_unary_infer"]

Outputs = dict[str, NDArray[Any]]
BACKEND_THREADS = 64
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()


def backend_executor() -> ThreadPoolExecutor:
    """The threads backends run in (shared by all models; asyncio's default pool has only a few)."""
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=BACKEND_THREADS, thread_name_prefix="steerlm-backend")
        return _executor


def _inputs(request: Any) -> Mapping[str, NDArray[Any]]:
    data: Mapping[str, NDArray[Any]] = getattr(request, "data", request)
    return data


def _answer(backend: Backend, variant: NemoVariant, request: Any) -> Outputs:
    inputs = _inputs(request)
    rows = rows_of(inputs)
    flags: dict[str, bool] = {}
    try:
        prompts, params, flags = decode_request(inputs, variant)
        texts = backend.generate(prompts, params)
    except ServerFault:
        raise
    except Exception as exc:  # NeMo answers every failure in-band
        texts = error_texts(exc, rows)
    return response(texts, flags)


def make_unary_infer(backend: Backend, variant: NemoVariant) -> Any:
    """An async infer function answering each request of the list with one response."""

    async def infer(requests: Sequence[Any]) -> list[Outputs]:
        loop = asyncio.get_running_loop()
        jobs = [loop.run_in_executor(backend_executor(), _answer, backend, variant, request) for request in requests]
        return list(await asyncio.gather(*jobs))

    return infer


class _RequestStream:
    """One request's token stream; finished (or failed) streams report None."""

    def __init__(self, backend: Backend, variant: NemoVariant, request: Any) -> None:
        inputs = _inputs(request)
        self.rows = rows_of(inputs)
        self.last: list[str] = [""] * self.rows
        self._iterator: Iterator[list[str]] | None = None
        self._error: list[str] | None = None
        try:
            prompts, params, _ = decode_request(inputs, variant)
            self._iterator = iter(backend.stream(prompts, params))
        except ServerFault:
            raise
        except Exception as exc:
            self._error = error_texts(exc, self.rows)

    def step(self) -> list[str] | None:
        if self._error is not None:
            texts, self._error = self._error, None
            self.last = texts
            return texts
        if self._iterator is None:
            return None
        try:
            texts = next(self._iterator)
        except StopIteration:
            self._iterator = None
            return None
        except ServerFault:
            raise
        except Exception as exc:
            self._iterator = None
            texts = error_texts(exc, self.rows)
        self.last = texts
        return texts


def make_streaming_infer(backend: Backend, variant: NemoVariant) -> Any:
    """An async-generator infer function for a decoupled model.

    It yields one response per request per step (PyTriton needs a response for every request of the
    list in each yield), each holding the cumulative text; a request that has already finished repeats
    its last text until all have. PyTriton then ends every stream with its empty final response. Like
    NeMo's streaming path, it never returns logits.
    """

    async def infer(requests: Sequence[Any]) -> AsyncIterator[list[Outputs]]:
        loop = asyncio.get_running_loop()
        streams = [_RequestStream(backend, variant, request) for request in requests]
        while True:
            steps = await asyncio.gather(*(loop.run_in_executor(backend_executor(), s.step) for s in streams))
            if all(step is None for step in steps):
                return
            yield [response(step if step is not None else s.last)
                   for s, step in zip(streams, steps, strict=True)]

    return infer
