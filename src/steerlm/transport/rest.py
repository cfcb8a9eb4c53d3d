"""Legacy NeMo REST transport (``megatron_gpt_eval.py server=True``: ``PUT /generate``; REFERENCE §3b).

Served models such as SteerLM Llama-2 13B are reached with ``url="nemo-rest://host:port"`` (TLS:
``nemo-rests://``); the server has no model name, so ``model`` only picks the profile
(``SteerLMClient("SteerLM-Llama2-13B", "nemo-rest://localhost:5555")``). It plugs into the client as
one more codec × connection pair, so batching, retries, failover and output clean-up are the client's:

* `RestConnection` / `AsyncRestConnection` speak JSON over HTTP (stdlib ``urllib`` without proxies /
  ``aiohttp``). There is no readiness endpoint: ``model_ready`` opens a TCP connection, and the
  "model config" is synthesised (`REST_CONFIG`: ``max_batch_size`` 128, not decoupled — streaming
  returns the whole answer as one chunk);
* `NemoRestCodec` (`steerlm.transport.rest_codec`, re-exported here) maps parameters: ``max_tokens`` →
  ``tokens_to_generate``, ``top_k``, ``top_p``, ``temperature``, ``repetition_penalty``, ``seed`` →
  ``random_seed`` (honoured from NeMo v1.23; older servers log and ignore unknown keys), stop strings
  (the profile's plus the caller's) → ``end_strings``.
  ``top_k == 1`` or ``temperature == 0`` sends ``greedy: true`` (NeMo refuses ``temperature`` 0);
* the answer ``sentences[i]`` is prompt + completion: the prompt is stripped, also when the server's
  detokenizer dropped the ``<extra_id_N>`` markers (`steerlm.output.strip_echo`);
* a validation failure arrives as a bare JSON string with HTTP 200 (e.g. ``"temperature must be a
  positive number less than or equal to 100.0"``) and raises `InvalidRequestError`; other HTTP
  statuses and socket errors go through `steerlm.errors.classify` (400 → InvalidRequestError,
  502/503/504 → ServerUnavailableError, 429 → ServerOverloadedError, timeouts → RequestTimeoutError).
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import urllib.error
import urllib.request
from collections.abc import AsyncGenerator, Generator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from steerlm.errors import ConfigurationError, InvalidRequestError
from steerlm.transport.base import Array, StreamEvent, WireRequest, mapped_errors
from steerlm.transport.codecs import rows_to_text
from steerlm.transport.rest_codec import REST_CONFIG, NemoRestCodec
from steerlm.transport.tls import make_ssl_context
from steerlm.transport.urls import Endpoint

if TYPE_CHECKING:
    from steerlm.client.settings import ClientSettings

__all__ = ["REST_CONFIG", "AsyncRestConnection", "NemoRestCodec", "RestConnection", "RestStatusError",
           "parse_reply", "request_body"]



class RestStatusError(Exception):
    """A non-200 HTTP answer, shaped for `errors.classify` (`status`, `message`, `headers`)."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"[{status}] {message}")
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def _value(array: Array) -> Any:
    item = np.asarray(array).reshape(-1)[0]
    item = item.item() if isinstance(item, np.generic) else item
    return item.decode("utf-8") if isinstance(item, bytes) else item


def request_body(request: WireRequest) -> dict[str, Any]:
    """The JSON body of one request: every sentence, and the first row of everything else."""
    body: dict[str, Any] = {}
    for name, array in {**request.fixed.arrays, **request.inputs}.items():
        if name == "sentences":
            body[name] = rows_to_text(array)
        elif name == "end_strings":
            row = np.asarray(array).reshape(array.shape[0], -1)[0]
            body[name] = [w for w in (v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in row) if w]
        else:
            body[name] = _value(array)
    return body


def _message(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        return text[:500] or "(empty body)"
    if isinstance(data, str):
        return data
    if isinstance(data, Mapping) and "message" in data:
        return str(data["message"])
    return text[:500]


def parse_reply(status: int, raw: bytes, headers: Mapping[str, str], rows: int, model: str) -> dict[str, Array]:
    """The ``sentences`` output of one answer; raises for refusals and malformed answers."""
    if status != 200:
        raise RestStatusError(status, _message(raw), headers)
    try:
        data = json.loads(raw)
    except ValueError:
        raise InvalidRequestError(f"the NeMo REST server sent a body that is not JSON: {raw[:200]!r}",
                                  status=status, model=model) from None
    if isinstance(data, str):
        raise InvalidRequestError(f"the NeMo REST server refused the request: {data}", status=status, model=model)
    sentences = data.get("sentences") if isinstance(data, Mapping) else None
    if not isinstance(sentences, list) or len(sentences) != rows or not all(isinstance(s, str) for s in sentences):
        raise InvalidRequestError(f"unexpected NeMo REST answer (expected {rows} 'sentences'): {str(data)[:200]}",
                                  status=status, model=model)
    out = np.empty((rows, 1), dtype=np.object_)
    out[:, 0] = [s.encode("utf-8") for s in sentences]
    return {"sentences": out}


class _Common:
    def __init__(self, endpoint: Endpoint, options: ClientSettings) -> None:
        self.endpoint = endpoint
        self.url = f"{'https' if endpoint.ssl else 'http'}://{endpoint.address}/generate"
        parts = urlsplit(self.url)
        self._host, self._port = parts.hostname or "", int(parts.port or 0)
        self._timeout = options.timeout
        self._headers = {**dict(options.headers), "Content-Type": "application/json"}
        self._probe_timeout = options.probe_timeout
        self._ssl = make_ssl_context(ssl, options.root_certificates, options.verify_ssl, options.client_certificate,
                                     options.client_key) if endpoint.ssl else None

    def _headers_for(self, request: WireRequest) -> dict[str, str]:
        if request.headers is None:
            return self._headers
        return {**request.headers, "Content-Type": "application/json"}

    def _config(self, model: str) -> Mapping[str, Any]:
        return {**REST_CONFIG, "name": model}

    def _payload(self, request: WireRequest) -> tuple[bytes, int]:
        body = request_body(request)
        return json.dumps(body).encode("utf-8"), len(body["sentences"])

    def _no_stream(self, request: WireRequest) -> ConfigurationError:
        return ConfigurationError(f"the NeMo REST server does not stream (model {request.model!r})")


class RestConnection(_Common):
    """Blocking connection (stdlib urllib, no proxies); safe to share between threads."""

    def __init__(self, endpoint: Endpoint, options: ClientSettings) -> None:
        super().__init__(endpoint, options)
        handlers: list[Any] = [urllib.request.ProxyHandler({})]
        if self._ssl is not None:
            handlers.append(urllib.request.HTTPSHandler(context=self._ssl))
        self._opener = urllib.request.build_opener(*handlers)

    def model_ready(self, model: str) -> bool:
        with mapped_errors(model):
            socket.create_connection((self._host, self._port), timeout=self._probe_timeout).close()
        return True

    def model_config(self, model: str) -> Mapping[str, Any]:
        return self._config(model)

    def model_index(self) -> dict[str, str] | None:
        return None

    def _put(self, data: bytes, wire: WireRequest) -> tuple[int, bytes, Mapping[str, str]]:
        request = urllib.request.Request(self.url, data=data, method="PUT", headers=self._headers_for(wire))
        try:
            with self._opener.open(request, timeout=wire.timeout or self._timeout) as answer:
                return int(answer.status), answer.read(), dict(answer.headers)
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read(), dict(exc.headers or {})
        except urllib.error.URLError as exc:
            raise exc.reason if isinstance(exc.reason, BaseException) else exc from exc

    def infer(self, request: WireRequest) -> dict[str, Array]:
        data, rows = self._payload(request)
        with mapped_errors(request.model):
            return parse_reply(*self._put(data, request), rows, request.model)

    def stream(self, request: WireRequest, inactivity_timeout: float | None) -> Generator[StreamEvent, None, None]:
        raise self._no_stream(request)

    def close(self) -> None:
        return None


class AsyncRestConnection(_Common):
    """asyncio connection (aiohttp). Each request uses its own short-lived session: nothing is left
    open when an event loop ends (the legacy server serialises generation, so keep-alive buys little)."""

    async def model_ready(self, model: str) -> bool:
        with mapped_errors(model):
            async with asyncio.timeout(self._probe_timeout):
                _, writer = await asyncio.open_connection(self._host, self._port)
                writer.close()
                await writer.wait_closed()
        return True

    async def model_config(self, model: str) -> Mapping[str, Any]:
        return self._config(model)

    async def model_index(self) -> dict[str, str] | None:
        return None

    async def infer(self, request: WireRequest) -> dict[str, Array]:
        import aiohttp

        data, rows = self._payload(request)
        timeout = aiohttp.ClientTimeout(total=request.timeout or self._timeout)
        with mapped_errors(request.model):
            async with aiohttp.ClientSession(timeout=timeout) as session, session.put(
                self.url, data=data, headers=self._headers_for(request),
                ssl=self._ssl if self._ssl is not None else True
            ) as answer:
                raw = await answer.read()
                return parse_reply(answer.status, raw, dict(answer.headers), rows, request.model)

    def stream(self, request: WireRequest, inactivity_timeout: float | None) -> AsyncGenerator[StreamEvent, None]:
        raise self._no_stream(request)

    async def close(self) -> None:
        return None

