"""gRPC connections (tritonclient `grpc` and `grpc.aio`), unary and decoupled streaming.

Streams use the service stub's `ModelStreamInfer` directly with a one-request iterator, so every
request gets its **own** bidirectional stream on the shared channel (no stream is shared between
threads or tasks, unlike tritonclient's one-stream-per-client `start_stream`), the blocking form is
read in the caller's thread (no callback thread, no queue), and cancelling is `call.cancel()`.
The request asks for PyTriton's empty final response (`triton_enable_empty_final_response`), and a
response whose `triton_final_response` parameter is true ends the stream whether or not it carries
data (TRT-LLM flags its last data response). The request stream is half-closed after the one
request, so the call also ends when the server finishes. Silence longer than the inactivity
timeout cancels the stream and raises RequestTimeoutError.

Blocking connections still open at interpreter exit are closed by an `atexit` hook: a channel left to
the garbage collector during interpreter shutdown makes tritonclient's `__del__` print "Exception
ignored ... 'NoneType' object has no attribute 'StatusCode'" (grpc's module globals are gone by then).
"""

from __future__ import annotations

import asyncio
import atexit
import weakref
from collections.abc import AsyncGenerator, Generator, Mapping
from typing import TYPE_CHECKING, Any

import grpc
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as aiogrpc
from tritonclient.grpc import service_pb2
from tritonclient.grpc._client import MAX_GRPC_MESSAGE_SIZE
from tritonclient.grpc._utils import _get_inference_request
from tritonclient.utils import InferenceServerException

from steerlm.errors import ConfigurationError, classify
from steerlm.transport.base import Array, StreamEvent, WireRequest, mapped_errors, silent_stream
from steerlm.transport.urls import Endpoint
from steerlm.transport.watchdog import shared_watchdog
from steerlm.transport.wire import build_inputs, read_outputs

if TYPE_CHECKING:
    from steerlm.client.settings import ClientSettings

__all__ = ["AsyncGrpcConnection", "GrpcConnection"]

# tritonclient's defaults plus a short reconnect backoff, so a restarted server is used again
# within about a second instead of after grpc's default backoff (up to 120 s).
_CHANNEL_ARGS: list[tuple[str, Any]] = [
    ("grpc.max_send_message_length", MAX_GRPC_MESSAGE_SIZE),
    ("grpc.max_receive_message_length", MAX_GRPC_MESSAGE_SIZE),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


def _client_kwargs(endpoint: Endpoint, options: ClientSettings) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"channel_args": _CHANNEL_ARGS}
    if endpoint.ssl:
        if not options.verify_ssl:
            raise ConfigurationError(
                "verify_ssl=False is not available over gRPC (grpcio always verifies the server); "
                "pass root_certificates= with the server's CA, or use https://"
            )
        kwargs["creds"] = grpc.ssl_channel_credentials(root_certificates=options.root_certificates,
                                                       private_key=options.client_key,
                                                       certificate_chain=options.client_certificate)
    return kwargs


def _stream_request(request: WireRequest) -> service_pb2.ModelInferRequest:
    inputs, outputs = build_inputs(grpcclient, "grpc", request)
    proto = _get_inference_request(
        model_name=request.model, inputs=inputs, model_version="", request_id="", outputs=outputs,
        sequence_id=0, sequence_start=False, sequence_end=False, priority=0, timeout=None, parameters=None,
    )
    proto.parameters["triton_enable_empty_final_response"].bool_param = True
    return proto


def _event(response: Any, request: WireRequest) -> StreamEvent:
    if response.error_message:
        exc = InferenceServerException(msg=response.error_message)
        raise classify(exc, model=request.model) from exc
    infer = response.infer_response
    params = infer.parameters
    final = "triton_final_response" in params and params["triton_final_response"].bool_param
    outputs = read_outputs(grpcclient.InferResult(infer), request.fixed.outputs) if infer.outputs else {}
    return StreamEvent(outputs=outputs, final=final)


class _Common:
    def __init__(self, endpoint: Endpoint, options: ClientSettings) -> None:
        self.endpoint = endpoint
        self._kwargs = _client_kwargs(endpoint, options)
        self._timeout = options.timeout
        self._probe_timeout = options.probe_timeout
        self._headers = dict(options.headers) or None
        self._metadata = tuple(self._headers.items()) if self._headers else ()

    def _call_headers(self, request: WireRequest) -> dict[str, str] | None:
        return dict(request.headers) if request.headers is not None else self._headers

    def _call_metadata(self, request: WireRequest) -> tuple[tuple[str, str], ...]:
        return tuple(request.headers.items()) if request.headers is not None else self._metadata


def _index(answer: Any) -> dict[str, str]:
    return {str(m.get("name")): str(m.get("state", "")) for m in (answer or {}).get("models", [])}


class GrpcConnection(_Common):
    """Blocking gRPC connection; thread-safe (one channel, one stream per request)."""

    def __init__(self, endpoint: Endpoint, options: ClientSettings) -> None:
        super().__init__(endpoint, options)
        self._client: grpcclient.InferenceServerClient | None = grpcclient.InferenceServerClient(
            endpoint.address, **self._kwargs)
        _OPEN.add(self)

    def _get(self) -> grpcclient.InferenceServerClient:
        if self._client is None:
            raise ConfigurationError(f"the connection to {self.endpoint.url} is closed")
        return self._client

    def model_ready(self, model: str) -> bool:
        with mapped_errors(model):
            return bool(self._get().is_model_ready(model, headers=self._headers,
                                                   client_timeout=self._probe_timeout))

    def model_config(self, model: str) -> Mapping[str, Any]:
        with mapped_errors(model):
            answer = self._get().get_model_config(model, headers=self._headers, as_json=True,
                                                  client_timeout=self._timeout)
            return dict(answer)

    def model_index(self) -> dict[str, str] | None:
        try:
            return _index(self._get().get_model_repository_index(
                headers=self._headers, as_json=True, client_timeout=self._probe_timeout))
        except Exception:
            return None

    def infer(self, request: WireRequest) -> dict[str, Array]:
        inputs, outputs = build_inputs(grpcclient, "grpc", request)
        with mapped_errors(request.model):
            result = self._get().infer(request.model, inputs, outputs=outputs, headers=self._call_headers(request),
                                       client_timeout=request.timeout or self._timeout)
            return read_outputs(result, request.fixed.outputs)

    def stream(self, request: WireRequest, inactivity_timeout: float | None) -> Generator[StreamEvent, None, None]:
        with mapped_errors(request.model):
            proto = _stream_request(request)
            call = self._get()._client_stub.ModelStreamInfer(iter((proto,)), metadata=self._call_metadata(request))
        watch = shared_watchdog().watch(call.cancel, inactivity_timeout) if inactivity_timeout else None
        try:
            with mapped_errors(request.model):
                try:
                    for response in call:
                        if watch is not None:
                            watch.pause()
                        event = _event(response, request)
                        yield event
                        if event.final:
                            return
                        if watch is not None:
                            watch.touch()
                except grpc.RpcError:
                    if watch is not None and watch.expired:
                        raise silent_stream(request.model, watch.timeout) from None
                    raise
        finally:
            if watch is not None:
                watch.done()
            call.cancel()

    def close(self) -> None:
        """Close the channel and drop the tritonclient client, so that it is freed now rather than by
        the garbage collector during interpreter shutdown."""
        _OPEN.discard(self)
        client, self._client = self._client, None
        if client is not None:
            client.close()


_OPEN: weakref.WeakSet[GrpcConnection] = weakref.WeakSet()


@atexit.register
def _close_open_connections() -> None:
    for conn in list(_OPEN):
        conn.close()


class AsyncGrpcConnection(_Common):
    """asyncio gRPC connection; one `grpc.aio` channel per event loop, one stream per request."""

    def __init__(self, endpoint: Endpoint, options: ClientSettings) -> None:
        super().__init__(endpoint, options)
        self._client: aiogrpc.InferenceServerClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _get(self) -> aiogrpc.InferenceServerClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = aiogrpc.InferenceServerClient(self.endpoint.address, **self._kwargs)
            self._loop = loop
        return self._client

    async def model_ready(self, model: str) -> bool:
        with mapped_errors(model):
            return bool(await self._get().is_model_ready(model, headers=self._headers,
                                                        client_timeout=self._probe_timeout))

    async def model_config(self, model: str) -> Mapping[str, Any]:
        with mapped_errors(model):
            answer = await self._get().get_model_config(model, headers=self._headers, as_json=True,
                                                       client_timeout=self._timeout)
            return dict(answer)

    async def model_index(self) -> dict[str, str] | None:
        try:
            return _index(await self._get().get_model_repository_index(
                headers=self._headers, as_json=True, client_timeout=self._probe_timeout))
        except Exception:
            return None

    async def infer(self, request: WireRequest) -> dict[str, Array]:
        inputs, outputs = build_inputs(grpcclient, "grpc", request)
        with mapped_errors(request.model):
            result = await self._get().infer(request.model, inputs, outputs=outputs,
                                             headers=self._call_headers(request),
                                             client_timeout=request.timeout or self._timeout)
            return read_outputs(result, request.fixed.outputs)

    async def stream(
        self, request: WireRequest, inactivity_timeout: float | None
    ) -> AsyncGenerator[StreamEvent, None]:
        with mapped_errors(request.model):
            proto = _stream_request(request)
            call = self._get()._client_stub.ModelStreamInfer(iter((proto,)), metadata=self._call_metadata(request))
        try:
            with mapped_errors(request.model):
                while True:
                    try:
                        async with asyncio.timeout(inactivity_timeout):
                            response = await call.read()
                    except TimeoutError:
                        raise silent_stream(request.model, inactivity_timeout) from None
                    if response is grpc.aio.EOF:
                        return
                    event = _event(response, request)
                    yield event
                    if event.final:
                        return
        finally:
            call.cancel()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.close()
