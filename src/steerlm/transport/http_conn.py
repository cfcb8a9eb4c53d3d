"""HTTP connections (tritonclient `http` on geventhttpclient, `http.aio` on aiohttp), unary only.

tritonclient's blocking HTTP client is not thread-safe, so the blocking connection keeps one per
thread. Client-side timeouts are per connection: `connection_timeout` and `network_timeout` (sync),
aiohttp's total timeout (`conn_timeout`, async). Triton's HTTP endpoint rejects decoupled models
(`[501] HTTP end point doesn't support models with decoupled transaction policy`), so `stream`
raises a ConfigurationError pointing to gRPC; non-decoupled streaming is done by the client with
`infer`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import AsyncGenerator, Generator, Mapping
from typing import Any

import gevent.ssl
import tritonclient.http as httpclient
import tritonclient.http.aio as aiohttpclient

from steerlm.errors import ConfigurationError
from steerlm.transport.base import Array, ConnectionOptions, StreamEvent, WireRequest, mapped_errors
from steerlm.transport.tls import make_ssl_context, read_root_certificates
from steerlm.transport.urls import Endpoint
from steerlm.transport.wire import build_inputs, read_outputs

__all__ = ["AsyncHttpConnection", "HttpConnection", "decoupled_over_http"]

_PROBE_TIMEOUT = 5.0


def decoupled_over_http(request: WireRequest, endpoint: Endpoint) -> ConfigurationError:
    return ConfigurationError(
        f"model {request.model!r} is decoupled (streaming-only) and Triton serves decoupled models over "
        f"gRPC only; use a grpc:// URL instead of {endpoint.url}"
    )


def _index(answer: Any) -> list[str]:
    return [str(m.get("name")) for m in answer or [] if isinstance(m, Mapping)]


class _Common:
    def __init__(self, endpoint: Endpoint, options: ConnectionOptions) -> None:
        self.endpoint = endpoint
        self._timeout = options.timeout
        self._headers = dict(options.headers) or None
        self._pem = read_root_certificates(options.root_certificates) if endpoint.ssl else None
        self._verify = options.verify_ssl


class HttpConnection(_Common):
    """Blocking HTTP connection; one tritonclient client per calling thread."""

    def __init__(self, endpoint: Endpoint, options: ConnectionOptions) -> None:
        super().__init__(endpoint, options)
        self._local = threading.local()
        self._all: list[httpclient.InferenceServerClient] = []
        self._lock = threading.Lock()

    def _new_client(self, timeout: float) -> httpclient.InferenceServerClient:
        kwargs: dict[str, Any] = {}
        if self.endpoint.ssl:
            context = make_ssl_context(gevent.ssl, self._pem, self._verify)
            kwargs = {"ssl": True, "ssl_context_factory": lambda *_a, **_k: context,
                      "insecure": not self._verify}
        return httpclient.InferenceServerClient(
            self.endpoint.address, connection_timeout=timeout, network_timeout=timeout, **kwargs
        )

    def _get(self, probe: bool = False) -> httpclient.InferenceServerClient:
        attr = "probe" if probe else "client"
        client: httpclient.InferenceServerClient | None = getattr(self._local, attr, None)
        if client is None:
            client = self._new_client(min(self._timeout, _PROBE_TIMEOUT) if probe else self._timeout)
            setattr(self._local, attr, client)
            with self._lock:
                self._all.append(client)
        return client

    def model_ready(self, model: str) -> bool:
        with mapped_errors(model):
            return bool(self._get(probe=True).is_model_ready(model, headers=self._headers))

    def model_config(self, model: str) -> Mapping[str, Any]:
        with mapped_errors(model):
            return dict(self._get().get_model_config(model, headers=self._headers))

    def model_index(self) -> list[str] | None:
        try:
            return _index(self._get(probe=True).get_model_repository_index(headers=self._headers))
        except Exception:
            return None

    def infer(self, request: WireRequest) -> dict[str, Array]:
        inputs, outputs = build_inputs(httpclient, "http", request)
        with mapped_errors(request.model):
            result = self._get().infer(request.model, inputs, outputs=outputs, headers=self._headers)
            return read_outputs(result, request.fixed.outputs)

    def stream(self, request: WireRequest, inactivity_timeout: float | None) -> Generator[StreamEvent, None, None]:
        raise decoupled_over_http(request, self.endpoint)

    def close(self) -> None:
        with self._lock:
            clients, self._all = self._all, []
        self._local = threading.local()
        for client in clients:
            with contextlib.suppress(Exception):  # one made by another thread may refuse; dropped anyway
                client.close()


class AsyncHttpConnection(_Common):
    """asyncio HTTP connection; one aiohttp-backed client per event loop."""

    def __init__(self, endpoint: Endpoint, options: ConnectionOptions) -> None:
        super().__init__(endpoint, options)
        self._context = make_ssl_context(ssl, self._pem, self._verify) if endpoint.ssl else None
        self._client: aiohttpclient.InferenceServerClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _get(self) -> aiohttpclient.InferenceServerClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = aiohttpclient.InferenceServerClient(
                self.endpoint.address, conn_timeout=self._timeout, ssl=self.endpoint.ssl,
                ssl_context=self._context,
            )
            self._loop = loop
        return self._client

    async def model_ready(self, model: str) -> bool:
        with mapped_errors(model):
            async with asyncio.timeout(min(self._timeout, _PROBE_TIMEOUT)):
                return bool(await self._get().is_model_ready(model, headers=self._headers))

    async def model_config(self, model: str) -> Mapping[str, Any]:
        with mapped_errors(model):
            return dict(await self._get().get_model_config(model, headers=self._headers))

    async def model_index(self) -> list[str] | None:
        try:
            async with asyncio.timeout(min(self._timeout, _PROBE_TIMEOUT)):
                return _index(await self._get().get_model_repository_index(headers=self._headers))
        except Exception:
            return None

    async def infer(self, request: WireRequest) -> dict[str, Array]:
        inputs, outputs = build_inputs(httpclient, "http", request)
        with mapped_errors(request.model):
            result = await self._get().infer(request.model, inputs, outputs=outputs, headers=self._headers)
            return read_outputs(result, request.fixed.outputs)

    def stream(self, request: WireRequest, inactivity_timeout: float | None) -> AsyncGenerator[StreamEvent, None]:
        raise decoupled_over_http(request, self.endpoint)

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and self._loop is asyncio.get_running_loop():
            await client.close()
