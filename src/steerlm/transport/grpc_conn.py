"""gRPC connections (blocking `grpc` and `grpc.aio`), unary and decoupled streaming.

Each connection owns one channel and calls Triton's service through the public generated stub
(`tritonclient.grpc.service_pb2_grpc.GRPCInferenceServiceStub`; messages built in
`steerlm.transport.grpc_wire`) — no private tritonclient API. Streams call `ModelStreamInfer` with a
one-request iterator, so every request gets its **own** bidirectional stream on the shared channel (no
stream is shared between threads or tasks, unlike tritonclient's one-stream-per-client
`start_stream`), the blocking form is read in the caller's thread (no callback thread, no queue), and
cancelling is `call.cancel()`. The request asks for PyTriton's empty final response
(`triton_enable_empty_final_response`), and a response whose `triton_final_response` parameter is
true ends the stream whether or not it carries data (TRT-LLM flags its last data response). The
request stream is half-closed after the one request, so the call also ends when the server finishes.
Silence longer than the inactivity timeout cancels the stream and raises RequestTimeoutError.

Blocking channels still open at interpreter exit are closed by an `atexit` hook, while grpc's module
globals still exist.
"""

from __future__ import annotations

import asyncio
import atexit
import weakref
from collections.abc import AsyncGenerator, Generator, Mapping
from typing import TYPE_CHECKING, Any

import grpc
from tritonclient.grpc import service_pb2, service_pb2_grpc

from steerlm.errors import ConfigurationError, classify
from steerlm.transport.base import Array, StreamEvent, WireRequest, mapped_errors, silent_stream
from steerlm.transport.grpc_wire import MAX_MESSAGE_BYTES, config_json, index_states, infer_request, outputs_of
from steerlm.transport.urls import Endpoint
from steerlm.transport.watchdog import shared_watchdog

if TYPE_CHECKING:
    from steerlm.client.settings import ClientSettings

__all__ = ["AsyncGrpcConnection", "GrpcConnection"]

# No message size cap, plus a short reconnect backoff, so a restarted server is used again within about
# a second instead of after grpc's default backoff (up to 120 s).
_CHANNEL_ARGS: list[tuple[str, Any]] = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


class GrpcStreamError(Exception):
    """An error response inside a decoupled stream (its `error_message`), shaped for `classify`."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _credentials(endpoint: Endpoint, options: ClientSettings) -> grpc.ChannelCredentials | None:
    if not endpoint.ssl:
        return None
    if not options.verify_ssl:
        raise ConfigurationError(
            "verify_ssl=False is not available over gRPC (grpcio always verifies the server); "
            "pass root_certificates= with the server's CA, or use https://"
        )
    return grpc.ssl_channel_credentials(root_certificates=options.root_certificates,
                                        private_key=options.client_key,
                                        certificate_chain=options.client_certificate)


def _event(response: Any, request: WireRequest) -> StreamEvent:
    if response.error_message:
        exc = GrpcStreamError(response.error_message)
        raise classify(exc, model=request.model) from exc
    infer = response.infer_response
    params = infer.parameters
    final = "triton_final_response" in params and params["triton_final_response"].bool_param
    outputs = outputs_of(infer, request.fixed.outputs) if infer.outputs else {}
    return StreamEvent(outputs=outputs, final=final)


class _Common:
    def __init__(self, endpoint: Endpoint, options: ClientSettings) -> None:
        self.endpoint = endpoint
        self._credentials = _credentials(endpoint, options)
        self._timeout = options.timeout
        self._probe_timeout = options.probe_timeout
        self._metadata = tuple(options.headers.items())

    def _call_metadata(self, request: WireRequest) -> tuple[tuple[str, str], ...]:
        return tuple(request.headers.items()) if request.headers is not None else self._metadata


class GrpcConnection(_Common):
    """Blocking gRPC connection; thread-safe (one channel, one stream per request)."""

    def __init__(self, endpoint: Endpoint, options: ClientSettings) -> None:
        super().__init__(endpoint, options)
        address = endpoint.address
        self._channel: grpc.Channel | None = (
            grpc.secure_channel(address, self._credentials, options=_CHANNEL_ARGS) if self._credentials
            else grpc.insecure_channel(address, options=_CHANNEL_ARGS))
        self._stub = service_pb2_grpc.GRPCInferenceServiceStub(self._channel)
        _OPEN.add(self)

    def _get(self) -> service_pb2_grpc.GRPCInferenceServiceStub:
        if self._channel is None:
            raise ConfigurationError(f"the connection to {self.endpoint.url} is closed")
        return self._stub

    def model_ready(self, model: str) -> bool:
        with mapped_errors(model):
            answer = self._get().ModelReady(service_pb2.ModelReadyRequest(name=model), metadata=self._metadata,
                                            timeout=self._probe_timeout)
            return bool(answer.ready)

    def model_config(self, model: str) -> Mapping[str, Any]:
        with mapped_errors(model):
            return config_json(self._get().ModelConfig(service_pb2.ModelConfigRequest(name=model),
                                                       metadata=self._metadata, timeout=self._timeout))

    def model_index(self) -> dict[str, str] | None:
        try:
            return index_states(self._get().RepositoryIndex(service_pb2.RepositoryIndexRequest(),
                                                            metadata=self._metadata, timeout=self._probe_timeout))
        except Exception:
            return None

    def infer(self, request: WireRequest) -> dict[str, Array]:
        with mapped_errors(request.model):
            response = self._get().ModelInfer(infer_request(request), metadata=self._call_metadata(request),
                                              timeout=request.timeout or self._timeout)
            return outputs_of(response, request.fixed.outputs)

    def stream(self, request: WireRequest, inactivity_timeout: float | None) -> Generator[StreamEvent, None, None]:
        with mapped_errors(request.model):
            proto = infer_request(request, stream=True)
            call = self._get().ModelStreamInfer(iter((proto,)), metadata=self._call_metadata(request))
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
        """Close the channel now (not later, by the garbage collector during interpreter shutdown)."""
        _OPEN.discard(self)
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()


_OPEN: weakref.WeakSet[GrpcConnection] = weakref.WeakSet()


@atexit.register
def _close_open_connections() -> None:
    for conn in list(_OPEN):
        conn.close()


class AsyncGrpcConnection(_Common):
    """asyncio gRPC connection; one `grpc.aio` channel per event loop, one stream per request."""

    def __init__(self, endpoint: Endpoint, options: ClientSettings) -> None:
        super().__init__(endpoint, options)
        self._channel: grpc.aio.Channel | None = None
        self._stub: service_pb2_grpc.GRPCInferenceServiceStub | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _get(self) -> service_pb2_grpc.GRPCInferenceServiceStub:
        loop = asyncio.get_running_loop()
        if self._stub is None or self._loop is not loop:
            address = self.endpoint.address
            self._channel = (grpc.aio.secure_channel(address, self._credentials, options=_CHANNEL_ARGS)
                             if self._credentials else grpc.aio.insecure_channel(address, options=_CHANNEL_ARGS))
            self._stub = service_pb2_grpc.GRPCInferenceServiceStub(self._channel)
            self._loop = loop
        return self._stub

    async def model_ready(self, model: str) -> bool:
        with mapped_errors(model):
            answer = await self._get().ModelReady(service_pb2.ModelReadyRequest(name=model),
                                                  metadata=self._metadata, timeout=self._probe_timeout)
            return bool(answer.ready)

    async def model_config(self, model: str) -> Mapping[str, Any]:
        with mapped_errors(model):
            return config_json(await self._get().ModelConfig(service_pb2.ModelConfigRequest(name=model),
                                                             metadata=self._metadata, timeout=self._timeout))

    async def model_index(self) -> dict[str, str] | None:
        try:
            return index_states(await self._get().RepositoryIndex(
                service_pb2.RepositoryIndexRequest(), metadata=self._metadata, timeout=self._probe_timeout))
        except Exception:
            return None

    async def infer(self, request: WireRequest) -> dict[str, Array]:
        with mapped_errors(request.model):
            response = await self._get().ModelInfer(infer_request(request), metadata=self._call_metadata(request),
                                                    timeout=request.timeout or self._timeout)
            return outputs_of(response, request.fixed.outputs)

    async def stream(
        self, request: WireRequest, inactivity_timeout: float | None
    ) -> AsyncGenerator[StreamEvent, None]:
        with mapped_errors(request.model):
            proto = infer_request(request, stream=True)
            call = self._get().ModelStreamInfer(iter((proto,)), metadata=self._call_metadata(request))
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
        channel, self._channel, self._stub = self._channel, None, None
        if channel is not None and self._loop is asyncio.get_running_loop():
            await channel.close()
