"""HTTP connections: unary requests through tritonclient (`http` on geventhttpclient, `http.aio` on
aiohttp), streams through Triton's generate extension (`steerlm.transport.generate_ext`).

tritonclient's blocking HTTP client is not thread-safe, so the blocking connection keeps one per
thread. Client-side timeouts are per connection: `connection_timeout` and `network_timeout` (sync),
aiohttp's total timeout (`conn_timeout`, async).

Triton's `/infer` endpoint rejects decoupled models (`[501] HTTP end point doesn't support models with
decoupled transaction policy`), so `stream` — used for every request to a decoupled model — posts one
prompt to `/v2/models/<model>/generate_stream` and reads the SSE answer incrementally: blocking, with
`http.client` on its own connection in the caller's thread (no thread, no queue; the socket timeout
is the inactivity timeout); asyncio, with an aiohttp session per event loop and `asyncio.timeout`
around each read. Silence longer than the inactivity timeout (also before the first event) raises
RequestTimeoutError; closing the generator closes the connection, which ends the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import ssl
import threading
import weakref
from collections.abc import AsyncGenerator, Generator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import gevent.ssl
import tritonclient.http as httpclient
import tritonclient.http.aio as aiohttpclient

from steerlm.transport.base import (
    Array,
    StreamEvent,
    WireRequest,
    mapped_errors,
    silent_stream,
)
from steerlm.transport.generate_ext import (
    GenerateError,
    SseParser,
    decode_event,
    error_message,
    request_body,
    stream_path,
)
from steerlm.transport.tls import make_ssl_context
from steerlm.transport.urls import Endpoint
from steerlm.transport.wire import build_inputs, read_outputs

if TYPE_CHECKING:
    from steerlm.client.settings import ClientSettings

__all__ = ["AsyncHttpConnection", "HttpConnection"]

_READ_SIZE = 65536


def _index(answer: Any) -> dict[str, str]:
    return {str(m.get("name")): str(m.get("state", "")) for m in answer or [] if isinstance(m, Mapping)}


class _Common:
    def __init__(self, endpoint: Endpoint, options: ClientSettings) -> None:
        self.endpoint = endpoint
        self._timeout = options.timeout
        self._probe_timeout = options.probe_timeout
        self._headers = dict(options.headers) or None
        self._pem = options.root_certificates if endpoint.ssl else None
        self._verify = options.verify_ssl
        self._pair = (options.client_certificate, options.client_key)
        parts = urlsplit(f"http://{endpoint.address}")
        self._host, self._port, self._base = parts.hostname or "", parts.port or 80, parts.path.rstrip("/")
        self._sse_headers = {**options.headers, "Content-Type": "application/json", "Accept": "text/event-stream"}

    def _sse(self, request: WireRequest) -> dict[str, str]:
        if request.headers is None:
            return self._sse_headers
        return {**request.headers, "Content-Type": "application/json", "Accept": "text/event-stream"}


class HttpConnection(_Common):
    """Blocking HTTP connection; one tritonclient client per calling thread while that thread lives.

    tritonclient's blocking client (geventhttpclient) is neither thread-safe nor movable between threads
    (its sockets belong to the gevent hub of the thread that made them), so each thread gets its own,
    kept in a `threading.local`: it is dropped, and its sockets closed, when the thread ends. Only a weak
    set remembers them for `close()`, so short-lived threads (LangChain's per-batch pools) leave nothing
    behind. A request with its own timeout uses a client made for it and closed after it.
    """

    def __init__(self, endpoint: Endpoint, options: ClientSettings) -> None:
        super().__init__(endpoint, options)
        self._local = threading.local()
        self._all: weakref.WeakSet[httpclient.InferenceServerClient] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._stdlib_context: ssl.SSLContext | None = None

    def _new_client(self, timeout: float) -> httpclient.InferenceServerClient:
        kwargs: dict[str, Any] = {}
        if self.endpoint.ssl:
            context = make_ssl_context(gevent.ssl, self._pem, self._verify, *self._pair)
            kwargs = {"ssl": True, "ssl_context_factory": lambda *_a, **_k: context,
                      "insecure": not self._verify}
        return httpclient.InferenceServerClient(
            self.endpoint.address, connection_timeout=timeout, network_timeout=timeout, **kwargs
        )

    def _get(self, probe: bool = False) -> httpclient.InferenceServerClient:
        attr = "probe" if probe else "client"
        client: httpclient.InferenceServerClient | None = getattr(self._local, attr, None)
        if client is None:
            client = self._new_client(self._probe_timeout if probe else self._timeout)
            setattr(self._local, attr, client)
            with self._lock:
                self._all.add(client)
        return client

    def open_clients(self) -> int:
        """How many tritonclient clients are alive (one or two per live calling thread)."""
        with self._lock:
            return len(self._all)

    def model_ready(self, model: str) -> bool:
        with mapped_errors(model):
            return bool(self._get(probe=True).is_model_ready(model, headers=self._headers))

    def model_config(self, model: str) -> Mapping[str, Any]:
        with mapped_errors(model):
            return dict(self._get().get_model_config(model, headers=self._headers))

    def model_index(self) -> dict[str, str] | None:
        try:
            return _index(self._get(probe=True).get_model_repository_index(headers=self._headers))
        except Exception:
            return None

    def infer(self, request: WireRequest) -> dict[str, Array]:
        inputs, outputs = build_inputs(httpclient, "http", request)
        with mapped_errors(request.model):
            headers = dict(request.headers) if request.headers is not None else self._headers
            if request.timeout is None or request.timeout == self._timeout:
                result = self._get().infer(request.model, inputs, outputs=outputs, headers=headers)
            else:
                client = self._new_client(request.timeout)
                try:
                    result = client.infer(request.model, inputs, outputs=outputs, headers=headers)
                finally:
                    client.close()
            return read_outputs(result, request.fixed.outputs)

    def _connection(self) -> http.client.HTTPConnection:
        if self.endpoint.ssl:
            if self._stdlib_context is None:
                self._stdlib_context = make_ssl_context(ssl, self._pem, self._verify, *self._pair)
            return http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout,
                                               context=self._stdlib_context)
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)

    def stream(self, request: WireRequest, inactivity_timeout: float | None) -> Generator[StreamEvent, None, None]:
        """The events of one generate_stream request (SSE), read as they arrive."""
        body = request_body(request)
        silence = inactivity_timeout or self._timeout
        conn = self._connection()
        try:
            with mapped_errors(request.model):
                conn.connect()
                assert conn.sock is not None
                conn.sock.settimeout(silence)
                conn.request("POST", stream_path(self._base, request.model), body=body, headers=self._sse(request))
                try:
                    response = conn.getresponse()
                    if response.status != 200:
                        raise GenerateError(error_message(response.read()), response.status, response.headers)
                    parser = SseParser()
                    while data := response.read1(_READ_SIZE):
                        for payload in parser.feed(data):
                            yield decode_event(payload, request.fixed.outputs)
                except TimeoutError:
                    raise silent_stream(request.model, silence) from None
        finally:
            conn.close()

    def close(self) -> None:
        with self._lock:
            clients, self._all = list(self._all), weakref.WeakSet()
        self._local = threading.local()
        for client in clients:
            with contextlib.suppress(Exception):  # one made by another thread may refuse; dropped anyway
                client.close()


class AsyncHttpConnection(_Common):
    """asyncio HTTP connection; one aiohttp-backed client per event loop."""

    def __init__(self, endpoint: Endpoint, options: ClientSettings) -> None:
        super().__init__(endpoint, options)
        self._context = make_ssl_context(ssl, self._pem, self._verify, *self._pair) if endpoint.ssl else None
        self._client: aiohttpclient.InferenceServerClient | None = None
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        scheme = "https" if endpoint.ssl else "http"
        self._origin = f"{scheme}://{endpoint.address.split('/', 1)[0]}"
        self._timeouts = aiohttp.ClientTimeout(total=None, sock_connect=self._timeout)

    def _on_loop(self) -> None:
        """Forget the clients of another event loop (they cannot be used, nor closed, from this one)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._client, self._session, self._loop = None, None, loop

    def _get(self) -> aiohttpclient.InferenceServerClient:
        self._on_loop()
        if self._client is None:
            self._client = aiohttpclient.InferenceServerClient(
                self.endpoint.address, conn_timeout=self._timeout, ssl=self.endpoint.ssl,
                ssl_context=self._context,
            )
        return self._client

    def _get_session(self) -> aiohttp.ClientSession:
        self._on_loop()
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._context if self._context is not None else True)
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        return self._session

    async def model_ready(self, model: str) -> bool:
        with mapped_errors(model):
            async with asyncio.timeout(self._probe_timeout):
                return bool(await self._get().is_model_ready(model, headers=self._headers))

    async def model_config(self, model: str) -> Mapping[str, Any]:
        with mapped_errors(model):
            return dict(await self._get().get_model_config(model, headers=self._headers))

    async def model_index(self) -> dict[str, str] | None:
        try:
            async with asyncio.timeout(self._probe_timeout):
                return _index(await self._get().get_model_repository_index(headers=self._headers))
        except Exception:
            return None

    async def infer(self, request: WireRequest) -> dict[str, Array]:
        inputs, outputs = build_inputs(httpclient, "http", request)
        with mapped_errors(request.model):
            headers = dict(request.headers) if request.headers is not None else self._headers
            async with asyncio.timeout(request.timeout):
                result = await self._get().infer(request.model, inputs, outputs=outputs, headers=headers)
            return read_outputs(result, request.fixed.outputs)

    async def stream(
        self, request: WireRequest, inactivity_timeout: float | None
    ) -> AsyncGenerator[StreamEvent, None]:
        """The events of one generate_stream request (SSE), read as they arrive."""
        body = request_body(request)
        url = self._origin + stream_path(self._base, request.model)
        response: aiohttp.ClientResponse | None = None
        try:
            with mapped_errors(request.model):
                try:
                    async with asyncio.timeout(inactivity_timeout):
                        response = await self._get_session().post(url, data=body, headers=self._sse(request),
                                                                  timeout=self._timeouts)
                        if response.status != 200:
                            raise GenerateError(error_message(await response.read()), response.status,
                                                response.headers)
                    parser = SseParser()
                    while True:
                        async with asyncio.timeout(inactivity_timeout):
                            data = await response.content.readany()
                        if not data:
                            return
                        for payload in parser.feed(data):
                            yield decode_event(payload, request.fixed.outputs)
                except TimeoutError:
                    raise silent_stream(request.model, inactivity_timeout) from None
        finally:
            if response is not None:
                response.close()

    async def close(self) -> None:
        client, session, self._client, self._session = self._client, self._session, None, None
        if self._loop is asyncio.get_running_loop():
            if client is not None:
                await client.close()
            if session is not None:
                await session.close()
