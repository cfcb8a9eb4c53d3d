"""`AsyncSteerLMClient`: the asyncio client (rendered prompts in, cleaned completions out).

The settings and all pure logic are `ClientBase` / `ClientCore`'s; this module holds the asyncio I/O
loops only (readiness wait, failover round, retry, batch, stream). Its blocking twin is
`steerlm.sync_client`; both are importable from `steerlm.client`.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

from steerlm.errors import ModelNotFoundError, SteerLMError, TritonError
from steerlm.params import GenerationParams
from steerlm.transport import AsyncConnection, StreamEvent, aconnect
from steerlm.transport.core import (
    ClientCore,
    Completion,
    PlannedRequest,
    StreamAssembler,
    StreamChunk,
    interrupted,
    reloaded,
)
from steerlm.transport.reports import RawAnswer
from steerlm.transport.session import ClientBase

__all__ = ["AsyncSteerLMClient"]

T = TypeVar("T")


class AsyncSteerLMClient(ClientBase):
    """asyncio client for a SteerLM / NeMo chat model on Triton (gRPC or HTTP)."""

    def _setup(self) -> None:
        self._conns: dict[int, AsyncConnection] = {}
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def _conn(self, index: int) -> AsyncConnection:
        conn = self._conns.get(index)
        if conn is None:
            conn = self._conns[index] = aconnect(self._core.endpoints[index], self._core.options)
        return conn

    async def _wait_ready(self) -> Mapping[str, Any]:
        core, wait = self._core, self._wait()
        while True:
            for index in core.order():
                try:
                    if await self._conn(index).model_ready(core.model):
                        core.preferred = index
                        return await self._conn(index).model_config(core.model)
                    wait.not_ready()
                except SteerLMError as exc:
                    wait.note(exc)
            delay = wait.next_delay()
            if delay is None:
                raise wait.failure(await self._conn(core.preferred).model_index())
            await asyncio.sleep(delay)

    async def _ready(self) -> ClientCore:
        if self._core.codec is None:
            lock = self._locks.setdefault(asyncio.get_running_loop(), asyncio.Lock())
            async with lock:
                if self._core.codec is None:
                    self._core.install(await self._wait_ready())
        return self._core

    async def _round(self, fn: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        order = self._core.order()
        for n, index in enumerate(order):
            try:
                result = await fn(self._conn(index))
            except ModelNotFoundError as exc:
                await self._wait_ready()
                raise reloaded(exc) from exc
            except TritonError as exc:
                self._failover(n, order, exc)
                continue
            self._core.preferred = index
            return result
        raise AssertionError("unreachable")

    async def _call(self, fn: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        policy = self._core.policy
        try:
            return await self._round(fn)
        except TritonError as exc:
            if not policy.should_retry(exc):
                raise
            await asyncio.sleep(policy.pause(exc))
        async for attempt in policy.aretrying(offset=1):
            with attempt:
                return await self._round(fn)
        raise AssertionError("unreachable")

    async def _run(self, conn: AsyncConnection, request: PlannedRequest, stops: Sequence[str]) -> list[RawAnswer]:
        core = self._core
        if not core.decoupled:
            return core.decode(request, await conn.infer(request.wire))
        joiner = core.joiner(request, stops)
        events = conn.stream(request.wire, core.stream_timeout)
        try:
            async for event in events:
                if joiner.feed(event):
                    break
        finally:
            await events.aclose()
        return joiner.answers()

    async def batch(self, prompts: Sequence[str], params: GenerationParams | None = None) -> list[Completion]:
        """One completion per prompt, in order; the requests of one batch run concurrently."""
        core = await self._ready()
        p = core.params(params)
        stops = core.stops(p)
        plan = core.plan(prompts, p, stream=False)
        parts = await asyncio.gather(*(self._call(partial(self._run, request=r, stops=stops)) for r in plan))
        return core.completions(prompts, [t for part in parts for t in part], stops)

    async def generate(self, prompt: str, params: GenerationParams | None = None) -> Completion:
        """Generate one completion for a rendered prompt."""
        return (await self.batch([self._core.one(prompt)], params))[0]

    async def _open(
        self, conn: AsyncConnection, request: PlannedRequest, stops: Sequence[str]
    ) -> tuple[AsyncGenerator[StreamEvent, None], StreamAssembler, list[StreamChunk]]:
        assembler = self._core.assembler(stops)
        events = conn.stream(request.wire, self._core.stream_timeout)
        try:
            async for event in events:
                chunks = assembler.feed(event)
                if chunks:
                    return events, assembler, chunks
            return events, assembler, [assembler.end()]
        except BaseException:
            await events.aclose()
            raise

    async def stream(
        self, prompt: str, params: GenerationParams | None = None
    ) -> AsyncGenerator[StreamChunk, None]:
        """Yield text deltas; the last chunk carries `finish_reason`. Retried only before the first."""
        core = await self._ready()
        p = core.params(params)
        if not core.streams_natively():
            done = await self.generate(prompt, p)
            yield StreamChunk(done.text, done.finish_reason)
            return
        request = core.plan([prompt], p, stream=True)[0]
        events, assembler, chunks = await self._call(lambda conn: self._open(conn, request, core.stops(p)))
        try:
            for chunk in chunks:
                yield chunk
            try:
                while not assembler.done:
                    event = await anext(events, None)
                    if event is None:
                        yield assembler.end()
                        break
                    for chunk in assembler.feed(event):
                        yield chunk
            except TritonError as exc:
                raise interrupted(exc, assembler.text) from exc
        finally:
            await events.aclose()

    async def close(self) -> None:
        """Close every connection (a later call opens new ones)."""
        conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            await conn.close()

    async def __aenter__(self) -> AsyncSteerLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
