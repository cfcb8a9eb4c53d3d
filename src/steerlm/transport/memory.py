"""`MemoryTransport`: an in-memory server for unit tests — a Python function answers, no network.

Like httpx's ``MockTransport``: pass it as ``transport=`` and the client (or an adapter, through
``client_kwargs={"transport": ...}``) talks to a function instead of a server. The whole client runs —
readiness wait, request planning, stop strings, retries, failover, stream assembly, error mapping —
only the sockets are replaced::

    from steerlm import SteerLMClient
    from steerlm.transport import MemoryTransport

    transport = MemoryTransport(lambda request: "Paris")
    client = SteerLMClient("Llama2-70B-SteerLM-Chat", transport=transport)
    client.generate("...").text                  # "Paris"
    transport.requests[-1].prompt                # the rendered prompt that was sent

The function gets a `MemoryRequest` (one prompt, the other inputs by name, the URL and headers) and
returns the answer text, or an iterable of text chunks (streamed one by one when ``streaming=True``;
joined otherwise). It may raise, e.g. ``ConnectionRefusedError`` or `MemoryServerError`, which the
client maps like any server error.

Scripted faults are consumed in order, one per contact that they apply to (a probe, a request, a
stream), optionally for one URL only: `refuse` (connection refused: the server is down), `not_ready`
(the server answers, the model is loading: probes say "not ready", requests "model not found"),
`overload` (HTTP 429 with Retry-After), `fail_after` (a stream dies after k chunks), `error` (any
status and message). `restart` scripts a restart: refused contacts, then a loading model.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator, Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from steerlm.transport.base import Array, StreamEvent, WireRequest, mapped_errors
from steerlm.transport.codecs import rows_to_text
from steerlm.transport.urls import Endpoint

if TYPE_CHECKING:
    from steerlm.client.settings import ClientSettings

__all__ = ["MemoryRequest", "MemoryServerError", "MemoryTransport", "model_config"]


@dataclass(frozen=True)
class MemoryRequest:
    """One prompt of a request, as the handler sees it."""

    model: str
    prompt: str
    inputs: Mapping[str, Any]  # every other input, by name: its first row as a Python value
    stream: bool  # True when the client streams it (a decoupled model: ``streaming=True``)
    url: str
    headers: Mapping[str, str] = field(repr=False)
    timeout: float | None = None


class MemoryServerError(Exception):
    """A server error answer (`status`: HTTP code or gRPC status name), mapped by the client's classifier."""

    def __init__(self, status: int | str, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"[{status}] {message}")
        self.status = str(status)
        self.message = message
        self.headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}


Handler = Callable[[MemoryRequest], "str | Iterable[str]"]


def model_config(model: str, *, streaming: bool, max_batch_size: int) -> dict[str, Any]:
    """A Triton config with the NeMo deploy signature (``prompts`` → ``outputs``), as a server reports it."""
    def tensor(name: str, datatype: str, optional: bool = True) -> dict[str, Any]:
        return {"name": name, "data_type": f"TYPE_{datatype}", "dims": [-1], "optional": optional}

    inputs = [tensor("prompts", "STRING", False), tensor("max_output_len", "INT64"), tensor("top_k", "INT64"),
              tensor("top_p", "FP32"), tensor("temperature", "FP32"), tensor("random_seed", "INT64"),
              tensor("repetition_penalty", "FP32"), tensor("stop_words_list", "STRING")]
    return {"name": model, "max_batch_size": max_batch_size, "input": inputs,
            "output": [tensor("outputs", "STRING")],
            "model_transaction_policy": {"decoupled": streaming}}


@dataclass
class _Fault:
    kind: str  # refuse | not_ready | overload | fail_after | error
    times: int
    url: str | None
    chunks: int = 0
    error: MemoryServerError | None = None

    def applies(self, contact: str) -> bool:
        if self.kind in ("refuse", "not_ready"):
            return True
        if self.kind == "fail_after":
            return contact == "stream"
        return contact in ("infer", "stream")


class MemoryTransport:
    """A transport whose server is `handler` (see the module docstring); thread-safe.

    `models`: the model names it serves (None: any name). `streaming`: the model is decoupled (the
    client streams every request). `max_batch_size`: prompts per request. `requests` records every
    prompt the handler answered; `contacts` counts every probe and request.
    """

    def __init__(self, handler: Handler, *, models: Sequence[str] | None = None, streaming: bool = False,
                 max_batch_size: int = 8) -> None:
        self.handler = handler
        self.models = None if models is None else tuple(models)
        self.streaming = streaming
        self.max_batch_size = max_batch_size
        self.requests: list[MemoryRequest] = []
        self.contacts = 0
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ scripting
    def _add(self, fault: _Fault) -> MemoryTransport:
        with self._lock:
            self._faults.append(fault)
        return self

    def refuse(self, times: int = 1, *, url: str | None = None) -> MemoryTransport:
        """The next `times` contacts find the server down (connection refused)."""
        return self._add(_Fault("refuse", times, url))

    def not_ready(self, times: int = 1, *, url: str | None = None) -> MemoryTransport:
        """The next `times` contacts find the model loading (probe: not ready; request: model not found)."""
        return self._add(_Fault("not_ready", times, url))

    def overload(self, times: int = 1, *, retry_after: float | None = None, url: str | None = None) -> MemoryTransport:
        """The next `times` requests are refused with HTTP 429 (and Retry-After)."""
        return self._add(_Fault("overload", times, url, error=MemoryServerError(429, "too many requests",
                                                                                 retry_after)))

    def error(self, status: int | str, message: str, times: int = 1, *, url: str | None = None) -> MemoryTransport:
        """The next `times` requests get this error answer (e.g. ``error(400, "bad input")``)."""
        return self._add(_Fault("error", times, url, error=MemoryServerError(status, message)))

    def fail_after(self, chunks: int, times: int = 1, *, url: str | None = None) -> MemoryTransport:
        """The next `times` streams lose the connection after `chunks` chunks."""
        return self._add(_Fault("fail_after", times, url, chunks=chunks))

    def restart(self, refused: int = 3, loading: int = 3, *, url: str | None = None) -> MemoryTransport:
        """A server restart: `refused` refused contacts, then `loading` contacts with the model loading."""
        return self.refuse(refused, url=url).not_ready(loading, url=url)

    def _contact(self, contact: str, url: str) -> _Fault | None:
        """The fault this contact meets (consumed), or None."""
        with self._lock:
            self.contacts += 1
            fault = next((f for f in self._faults if f.url is None or f.url == url), None)
            if fault is None or not fault.applies(contact):
                return None
            fault.times -= 1
            if fault.times <= 0:
                self._faults.remove(fault)
            return fault

    # ------------------------------------------------------------------ transport
    def connect(self, endpoint: Endpoint, settings: ClientSettings) -> MemoryConnection:
        return MemoryConnection(self, endpoint, settings)

    def aconnect(self, endpoint: Endpoint, settings: ClientSettings) -> AsyncMemoryConnection:
        return AsyncMemoryConnection(self, endpoint, settings)

    def __repr__(self) -> str:
        return f"MemoryTransport(streaming={self.streaming}, models={self.models})"


def _value(array: Array) -> Any:
    item = np.asarray(array).reshape(array.shape[0], -1)[0, 0]
    item = item.item() if isinstance(item, np.generic) else item
    return item.decode("utf-8") if isinstance(item, bytes) else item


def _column(texts: Sequence[str]) -> Array:
    out = np.empty((len(texts), 1), dtype=np.object_)
    out[:, 0] = [t.encode("utf-8") for t in texts]
    return out


class MemoryConnection:
    """A blocking connection to a `MemoryTransport` (one endpoint)."""

    def __init__(self, transport: MemoryTransport, endpoint: Endpoint, settings: ClientSettings) -> None:
        self.transport = transport
        self.endpoint = endpoint
        self._headers = dict(settings.headers)
        self._timeout = settings.timeout

    def _serves(self, model: str) -> bool:
        return self.transport.models is None or model in self.transport.models

    def _meet(self, contact: str, model: str) -> _Fault | None:
        fault = self.transport._contact(contact, self.endpoint.url)
        if fault is None:
            return None
        if fault.kind == "refuse":
            raise ConnectionRefusedError(111, f"Connection refused ({self.endpoint.url})")
        if fault.kind == "not_ready" and contact != "ready":
            raise MemoryServerError("NOT_FOUND", f"Request for unknown model: '{model}' is not found")
        if fault.error is not None:
            raise fault.error
        return fault

    def model_ready(self, model: str) -> bool:
        with mapped_errors(model):
            fault = self._meet("ready", model)
        return fault is None and self._serves(model)

    def model_config(self, model: str) -> Mapping[str, Any]:
        with mapped_errors(model):
            self._meet("config", model)
            if not self._serves(model):
                raise MemoryServerError(400, f"Request for unknown model: '{model}' is not found")
        t = self.transport
        return model_config(model, streaming=t.streaming, max_batch_size=t.max_batch_size)

    def model_index(self) -> dict[str, str] | None:
        return {m: "READY" for m in self.transport.models or ()}

    def _answers(self, request: WireRequest, stream: bool) -> list[list[str]]:
        prompts = rows_to_text(request.inputs["prompts"])
        inputs = {name: _value(array) for name, array in request.fixed.arrays.items()}
        headers = {**self._headers, **(request.headers or {})}
        out = []
        for prompt in prompts:
            memo = MemoryRequest(request.model, prompt, inputs, stream, self.endpoint.url, headers,
                                 request.timeout or self._timeout)
            answer = self.transport.handler(memo)
            with self.transport._lock:
                self.transport.requests.append(memo)
            out.append([answer] if isinstance(answer, str) else [str(chunk) for chunk in answer])
        return out

    def infer(self, request: WireRequest) -> dict[str, Array]:
        with mapped_errors(request.model):
            self._meet("infer", request.model)
            if not self._serves(request.model):
                raise MemoryServerError(400, f"Request for unknown model: '{request.model}' is not found")
            answers = self._answers(request, stream=False)
        return {"outputs": _column(["".join(chunks) for chunks in answers])}

    def stream(self, request: WireRequest, inactivity_timeout: float | None) -> Generator[StreamEvent, None, None]:
        with mapped_errors(request.model):
            fault = self._meet("stream", request.model)
            if not self._serves(request.model):
                raise MemoryServerError(400, f"Request for unknown model: '{request.model}' is not found")
            answers = self._answers(request, stream=True)
        limit = fault.chunks if fault is not None and fault.kind == "fail_after" else None
        for step in range(max(len(chunks) for chunks in answers)):
            if limit is not None and step >= limit:
                with mapped_errors(request.model):
                    raise ConnectionResetError(104, "Connection reset by peer (the server died mid-stream)")
            texts = ["".join(chunks[: step + 1]) for chunks in answers]  # NeMo streams cumulative text
            yield StreamEvent(outputs={"outputs": _column(texts)}, final=False)
        yield StreamEvent(outputs={}, final=True)

    def close(self) -> None:
        return None


class AsyncMemoryConnection:
    """The asyncio twin of `MemoryConnection` (the handler runs in the event loop's thread)."""

    def __init__(self, transport: MemoryTransport, endpoint: Endpoint, settings: ClientSettings) -> None:
        self._sync = MemoryConnection(transport, endpoint, settings)
        self.endpoint = endpoint

    async def model_ready(self, model: str) -> bool:
        return self._sync.model_ready(model)

    async def model_config(self, model: str) -> Mapping[str, Any]:
        return self._sync.model_config(model)

    async def model_index(self) -> dict[str, str] | None:
        return self._sync.model_index()

    async def infer(self, request: WireRequest) -> dict[str, Array]:
        return self._sync.infer(request)

    async def stream(self, request: WireRequest, inactivity_timeout: float | None) -> AsyncGenerator[StreamEvent, None]:
        for event in self._sync.stream(request, inactivity_timeout):
            yield event

    async def close(self) -> None:
        return None
