"""The blocking OpenAI-compatible connection (stdlib `http.client`; no proxies, no extra dependency).

Unary requests reuse one keep-alive connection per calling thread (a connection the server closed
while idle is reopened once, at once). A stream gets a connection of its own, whose socket timeout
is the inactivity timeout; closing the generator closes it, which ends the request on the server.
A batch the server does not take as a list goes out as concurrent single-prompt requests on a small
thread pool. Every failure leaves through `mapped_errors` (`steerlm.errors.classify`).
"""

from __future__ import annotations

import contextlib
import http.client
import threading
from collections.abc import Generator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from steerlm.transport.base import Array, StreamEvent, WireRequest, mapped_errors, silent_stream
from steerlm.transport.generate_ext import SseParser
from steerlm.transport.openai.common import Target, merge_outputs
from steerlm.transport.openai.wire import ChunkReader, RequestParts, model_ids
from steerlm.transport.urls import Endpoint

if TYPE_CHECKING:
    from steerlm.client.settings import ClientSettings

__all__ = ["OpenAIConnection"]

_READ_SIZE = 65536
_MAX_WORKERS = 16
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
Answer = tuple[int, Any, bytes]  # status, headers (case-insensitive `.get`), body


class OpenAIConnection:
    """Blocking connection to one OpenAI-compatible server; safe to share between threads."""

    def __init__(self, endpoint: Endpoint, options: ClientSettings) -> None:
        self.target = Target(endpoint, options)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[http.client.HTTPConnection] = []
        self._pool: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------ plumbing
    def _new(self, timeout: float) -> http.client.HTTPConnection:
        t = self.target
        if t.ssl_context is not None:
            return http.client.HTTPSConnection(t.host, t.port, timeout=timeout, context=t.ssl_context)
        return http.client.HTTPConnection(t.host, t.port, timeout=timeout)

    def _conn(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._new(self.target.timeout)
            with self._lock:
                self._open.append(conn)
        return conn

    def _exchange(self, body: bytes, parts: RequestParts) -> Answer:
        """One POST on this thread's keep-alive connection (resent once if the server had closed it)."""
        conn = self._conn()
        timeout = parts.timeout or self.target.timeout
        if conn.timeout != timeout:
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
        headers, fresh = self.target.headers_for(parts), conn.sock is None
        try:
            return _send(conn, "POST", self.target.completions, body, headers)
        except _STALE:
            conn.close()
            if fresh:
                raise
        except BaseException:
            conn.close()
            raise
        try:
            return _send(conn, "POST", self.target.completions, body, headers)
        except BaseException:
            conn.close()
            raise

    def _probe(self, path: str) -> Answer:
        """A short-lived GET (readiness, model list) with the probe timeout."""
        conn = self._new(self.target.probe_timeout)
        try:
            return _send(conn, "GET", path, None, self.target.headers)
        finally:
            conn.close()

    def _post(self, prompt: str | list[str], parts: RequestParts) -> Answer:
        body = parts.body(prompt, formats=self.target.formats)
        status, headers, raw = self._exchange(body, parts)
        if self.target.moved(status, headers, raw):
            status, headers, raw = self._exchange(body, parts)
        if self.target.refuses_format(status, raw, parts):
            status, headers, raw = self._exchange(parts.body(prompt, formats=False), parts)
        return status, headers, raw

    # ------------------------------------------------------------------ Connection protocol
    def model_ready(self, model: str) -> bool:
        with mapped_errors(model):
            status, headers, raw = self._probe(self.target.models)
            # No model listing (404), or one that needs a key while the client has none of its own (the key
            # comes per call): the server is up, and the first request will tell.
            if status == 404 or (status in (401, 403) and not self.target.authorized):
                return True
            self.target.check(status, headers, raw, model)
            ids = model_ids(raw)
            return ids is None or model in ids

    def model_config(self, model: str) -> Mapping[str, Any]:
        return self.target.config(model)

    def model_index(self) -> dict[str, str] | None:
        try:
            status, _, raw = self._probe(self.target.models)
        except Exception:
            return None
        ids = model_ids(raw) if status == 200 else None
        return None if ids is None else dict.fromkeys(ids, "READY")

    def _single(self, parts: RequestParts, prompt: str, model: str) -> dict[str, Array]:
        return self.target.single_answer(*self._post(prompt, parts), model)

    def _singles(self, parts: RequestParts, model: str) -> dict[str, Array]:
        if len(parts.prompts) == 1:
            return self._single(parts, parts.prompts[0], model)
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(_MAX_WORKERS, thread_name_prefix="steerlm-openai")
            pool = self._pool
        futures = [pool.submit(self._single, parts, p, model) for p in parts.prompts]
        return merge_outputs([f.result() for f in futures])

    def infer(self, request: WireRequest) -> dict[str, Array]:
        parts = RequestParts(request)
        rows = len(parts.prompts)
        with mapped_errors(request.model):
            if rows > 1 and self.target.lists is not False:
                answer = self._post(list(parts.prompts), parts)
                outputs = self.target.list_answer(*answer, rows, request.model)
                if outputs is not None:
                    return outputs
            return self._singles(parts, request.model)

    def stream(self, request: WireRequest, inactivity_timeout: float | None) -> Generator[StreamEvent, None, None]:
        """One prompt's events: SSE chunks as they arrive (a whole answer when `stream` was not set)."""
        parts = RequestParts(request)
        if not parts.stream:
            yield StreamEvent(self.infer(request), final=True)
            return
        silence = inactivity_timeout or self.target.timeout
        reader = ChunkReader(request.model)
        conn = self._new(silence)
        try:
            with mapped_errors(request.model):
                try:
                    status, headers, raw, response = self._open_stream(conn, parts)
                    self.target.check(status, headers, raw, request.model)
                    if response is None:
                        yield reader.whole(raw)
                        return
                    parser = SseParser()
                    while not reader.done and (data := response.read1(_READ_SIZE)):
                        for payload in parser.feed(data):
                            event = reader.feed(payload)
                            if event is not None:
                                yield event
                    yield reader.end()
                except TimeoutError:
                    raise silent_stream(request.model, silence) from None
        finally:
            conn.close()

    def _open_stream(self, conn: http.client.HTTPConnection, parts: RequestParts) -> tuple[
            int, Any, bytes, http.client.HTTPResponse | None]:
        """Post a stream request; the open response for an SSE answer, else the whole body read."""
        headers = self.target.headers_for(parts)
        for _ in range(3):
            body = parts.body(parts.prompts[0], formats=self.target.formats)
            conn.request("POST", self.target.completions, body=body, headers=headers)
            response = conn.getresponse()
            kind = (response.getheader("Content-Type") or "").lower()
            if response.status == 200 and kind.startswith("text/event-stream"):
                return response.status, response.headers, b"", response
            raw = response.read()
            if not (self.target.moved(response.status, response.headers, raw)
                    or self.target.refuses_format(response.status, raw, parts)):
                return response.status, response.headers, raw, None
        return response.status, response.headers, raw, None

    def close(self) -> None:
        with self._lock:
            conns, self._open = self._open, []
            pool, self._pool = self._pool, None
        self._local = threading.local()
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()
        if pool is not None:
            pool.shutdown(wait=False)


def _send(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None,
          headers: Mapping[str, str]) -> Answer:
    conn.request(method, path, body=body, headers=dict(headers))
    response = conn.getresponse()
    raw = response.read()
    if response.will_close:
        conn.close()
    return response.status, response.headers, raw
