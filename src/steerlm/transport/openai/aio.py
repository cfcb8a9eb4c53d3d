"""The asyncio OpenAI-compatible connection (aiohttp, already a dependency through tritonclient).

One aiohttp session per event loop (keep-alive); a session of another loop is forgotten, never used.
Redirects are not followed by aiohttp (the trailing-slash route is learned in `Target.moved`). A stream
reads the SSE body with the inactivity timeout around each read; a batch the server does not take as a
list goes out as concurrent single-prompt requests (`asyncio.gather`). Every failure leaves through
`mapped_errors` (`steerlm.errors.classify`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp

from steerlm.transport.base import Array, StreamEvent, WireRequest, mapped_errors, silent_stream
from steerlm.transport.generate_ext import SseParser
from steerlm.transport.openai.common import Target, merge_outputs
from steerlm.transport.openai.wire import ChunkReader, RequestParts, model_ids
from steerlm.transport.urls import Endpoint

if TYPE_CHECKING:
    from steerlm.client.settings import ClientSettings

__all__ = ["AsyncOpenAIConnection"]

Answer = tuple[int, Any, bytes]  # status, headers (case-insensitive `.get`), body


class AsyncOpenAIConnection:
    """asyncio connection to one OpenAI-compatible server."""

    def __init__(self, endpoint: Endpoint, options: ClientSettings) -> None:
        self.target = Target(endpoint, options)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timeout = aiohttp.ClientTimeout(total=options.timeout)
        self._probe_timeout = aiohttp.ClientTimeout(total=options.probe_timeout)
        self._stream_timeout = aiohttp.ClientTimeout(total=None, sock_connect=options.timeout)

    def _get(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._session is None:
            ssl: Any = self.target.ssl_context if self.target.ssl_context is not None else True
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl), auto_decompress=True)
            self._loop = loop
        return self._session

    async def _exchange(self, method: str, path: str, body: bytes | None = None,
                        parts: RequestParts | None = None) -> Answer:
        """One request; without `parts` a readiness probe (the probe timeout)."""
        if parts is None:
            headers, timeout = self.target.headers, self._probe_timeout
        else:
            headers = self.target.headers_for(parts)
            timeout = self._timeout if parts.timeout is None else aiohttp.ClientTimeout(total=parts.timeout)
        async with self._get().request(method, self.target.origin + path, data=body, headers=headers,
                                       allow_redirects=False, timeout=timeout) as answer:
            return answer.status, answer.headers, await answer.read()

    async def _post(self, prompt: str | list[str], parts: RequestParts) -> Answer:
        body = parts.body(prompt, formats=self.target.formats)
        status, headers, raw = await self._exchange("POST", self.target.completions, body, parts)
        if self.target.moved(status, headers, raw):
            status, headers, raw = await self._exchange("POST", self.target.completions, body, parts)
        if self.target.refuses_format(status, raw, parts):
            status, headers, raw = await self._exchange("POST", self.target.completions,
                                                        parts.body(prompt, formats=False), parts)
        return status, headers, raw

    # ------------------------------------------------------------------ AsyncConnection protocol
    async def model_ready(self, model: str) -> bool:
        with mapped_errors(model):
            status, headers, raw = await self._exchange("GET", self.target.models)
            # No model listing (404), or one that needs a key while the client has none of its own (the key
            # comes per call): the server is up, and the first request will tell.
            if status == 404 or (status in (401, 403) and not self.target.authorized):
                return True
            self.target.check(status, headers, raw, model)
            ids = model_ids(raw)
            return ids is None or model in ids

    async def model_config(self, model: str) -> Mapping[str, Any]:
        return self.target.config(model)

    async def model_index(self) -> dict[str, str] | None:
        try:
            status, _, raw = await self._exchange("GET", self.target.models)
        except Exception:
            return None
        ids = model_ids(raw) if status == 200 else None
        return None if ids is None else dict.fromkeys(ids, "READY")

    async def _single(self, parts: RequestParts, prompt: str, model: str) -> dict[str, Array]:
        return self.target.single_answer(*await self._post(prompt, parts), model)

    async def _singles(self, parts: RequestParts, model: str) -> dict[str, Array]:
        answers = await asyncio.gather(*(self._single(parts, p, model) for p in parts.prompts))
        return merge_outputs(answers)

    async def infer(self, request: WireRequest) -> dict[str, Array]:
        parts = RequestParts(request)
        rows = len(parts.prompts)
        with mapped_errors(request.model):
            if rows > 1 and self.target.lists is not False:
                answer = await self._post(list(parts.prompts), parts)
                outputs = self.target.list_answer(*answer, rows, request.model)
                if outputs is not None:
                    return outputs
            return await self._singles(parts, request.model)

    async def stream(
        self, request: WireRequest, inactivity_timeout: float | None
    ) -> AsyncGenerator[StreamEvent, None]:
        """One prompt's events: SSE chunks as they arrive (a whole answer when `stream` was not set)."""
        parts = RequestParts(request)
        if not parts.stream:
            yield StreamEvent(await self.infer(request), final=True)
            return
        reader = ChunkReader(request.model)
        response: aiohttp.ClientResponse | None = None
        try:
            with mapped_errors(request.model):
                try:
                    response, status, headers, raw = await self._open_stream(parts, inactivity_timeout)
                    self.target.check(status, headers, raw, request.model)
                    if response is None:
                        yield reader.whole(raw)
                        return
                    parser = SseParser()
                    while not reader.done:
                        async with asyncio.timeout(inactivity_timeout):
                            data = await response.content.readany()
                        if not data:
                            break
                        for payload in parser.feed(data):
                            event = reader.feed(payload)
                            if event is not None:
                                yield event
                    yield reader.end()
                except TimeoutError:
                    raise silent_stream(request.model, inactivity_timeout) from None
        finally:
            if response is not None:
                response.close()

    async def _open_stream(self, parts: RequestParts, timeout: float | None) -> tuple[
            aiohttp.ClientResponse | None, int, Any, bytes]:
        """Post a stream request; the open response for an SSE answer, else the whole body read."""
        headers = self.target.headers_for(parts)
        url = self.target.origin + self.target.completions
        for _ in range(3):
            body = parts.body(parts.prompts[0], formats=self.target.formats)
            async with asyncio.timeout(timeout):
                response = await self._get().post(url, data=body, headers=headers, allow_redirects=False,
                                                  timeout=self._stream_timeout)
                kind = (response.headers.get("Content-Type") or "").lower()
                if response.status == 200 and kind.startswith("text/event-stream"):
                    return response, response.status, response.headers, b""
                raw = await response.read()
            response.close()
            if not (self.target.moved(response.status, response.headers, raw)
                    or self.target.refuses_format(response.status, raw, parts)):
                break
            url = self.target.origin + self.target.completions
        return None, response.status, response.headers, raw

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None and self._loop is asyncio.get_running_loop():
            await session.close()
