"""`AsyncSteerLMClient`: the asyncio client (rendered prompts in, cleaned completions out).

The settings and all pure logic are `ClientBase` / `ClientCore`'s; this module holds the asyncio I/O
loops only: the shared readiness wait, one failover round, retries and restarts, batch, stream and raw
requests. `steerlm.client.sync` is its blocking twin, written in the same shape (a unit test compares
the two after removing async/await).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

from steerlm.client.base import ClientBase
from steerlm.client.core import ClientCore, Completion, PlannedRequest, StreamAssembler, StreamChunk, interrupted
from steerlm.client.readiness import Ready
from steerlm.client.settings import CallOptions, ClientSettings
from steerlm.client.shared import AsyncSharedWait
from steerlm.errors import ConfigurationError, ModelNotFoundError, SteerLMError, TritonError
from steerlm.params import GenerationParams
from steerlm.transport.base import Array, AsyncConnection, ModelSpec, StreamEvent, WireRequest
from steerlm.transport.reports import RawAnswer
from steerlm.transport.tls import tls_refusal
from steerlm.transport.urls import Endpoint

__all__ = ["AsyncSteerLMClient"]

T = TypeVar("T")
_sleep = asyncio.sleep


async def _tls_refusal(exc: SteerLMError, endpoint: Endpoint, settings: ClientSettings) -> SteerLMError:
    """`tls_refusal` off the event loop (its handshake probe blocks)."""
    return await asyncio.to_thread(tls_refusal, exc, endpoint, settings)


async def _infer(conn: AsyncConnection, wire: WireRequest) -> dict[str, Array]:
    return await conn.infer(wire)


class AsyncSteerLMClient(ClientBase):
    """asyncio client for a SteerLM / NeMo chat model on Triton (gRPC or HTTP).

    ``AsyncSteerLMClient("Llama2-70B-SteerLM-Chat", "grpc://localhost:8001", timeout=30)``; the options
    are those of `ClientSettings`. Per-call `CallOptions` (timeout, headers, api_key) change one request.
    The requests of one `batch` run concurrently.
    """

    def _setup(self) -> None:
        self._conns: dict[int, AsyncConnection] = {}
        self._shared: AsyncSharedWait[Ready] = AsyncSharedWait()

    def _conn(self, index: int) -> AsyncConnection:
        conn = self._conns.get(index)
        if conn is None:
            conn = self._conns[index] = self._transport.aconnect(self._endpoints.endpoints[index], self.settings)
        return conn

    # ------------------------------------------------------------------ readiness
    async def _probe(self, recovering: bool) -> Ready:
        core, wait = self._core, self._wait(recovering)
        while True:
            wait.begin_round()
            for index in self._endpoints.order():
                conn = self._conn(index)
                config: Mapping[str, Any] | None = None
                try:
                    if await conn.model_ready(core.model):
                        config = await conn.model_config(core.model)
                    else:
                        models = await conn.model_index()
                except SteerLMError as exc:
                    endpoint = self._endpoints.endpoints[index]
                    if endpoint.ssl:  # a refused client certificate looks like an outage: probe (failures only)
                        exc = await _tls_refusal(exc, endpoint, self.settings)
                    wait.unreachable(self._endpoints.url(index), exc)
                    continue
                if config is None:
                    wait.loading(self._endpoints.url(index), models)
                    continue
                self._endpoints.succeeded(index)
                core.install(config)
                return wait.ready(config)
            await _sleep(wait.next_delay())

    async def _ready(self, recovering: bool = False) -> bool:
        """Wait (shared with every concurrent caller) until the model is ready; True if it had to wait."""
        ready = await self._shared.join(partial(self._probe, recovering))
        return ready.waited

    async def _core_ready(self) -> ClientCore:
        if self._core.codec is None:
            await self._ready()
        return self._core

    # ------------------------------------------------------------------ one request, retried
    async def _round(self, fn: Callable[..., Awaitable[T]], args: tuple[Any, ...]) -> T:
        order = self._endpoints.order()
        for position in range(len(order)):  # (no enumerate: nothing more held while the request runs)
            index = order[position]
            try:
                with self._endpoints.lease(index):
                    result = await fn(self._conn(index), *args)
            except TritonError as exc:
                self._endpoints.failed(position, order, exc)
                continue
            return result
        raise AssertionError("unreachable")

    async def _call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """``fn(connection, *args)``, failed over across the endpoints and retried (the one retry layer)."""
        attempt = recoveries = 0
        while True:
            generation = self._shared.generation
            try:
                return await self._round(fn, args)
            except TritonError as exc:
                if self._restarting(exc, recoveries):
                    recoveries += 1
                    waited = generation != self._shared.generation or await self._ready(recovering=True)
                    if waited or isinstance(exc, ModelNotFoundError):
                        continue  # the server restarted, or the model was reloaded, and it is back: send again
                attempt += 1
                await _sleep(self._core.policy.pause(attempt, exc))

    async def _run(self, conn: AsyncConnection, request: PlannedRequest, stops: Sequence[str]) -> list[RawAnswer]:
        core = self._core
        if not core.decoupled:
            return core.decode(request, await conn.infer(request.wire))
        joiner = core.joiner(request, stops)
        events = conn.stream(request.wire, request.wire.timeout or core.stream_timeout)
        try:
            async for event in events:
                if joiner.feed(event):
                    break
        finally:
            await events.aclose()
        return joiner.answers()

    # ------------------------------------------------------------------ public
    async def batch(self, prompts: Sequence[str], params: GenerationParams | None = None, *,
                    options: CallOptions | None = None) -> list[Completion]:
        """One completion per prompt, in order; the requests of one batch run concurrently."""
        core = await self._core_ready()
        p = core.params(params)
        stops = core.stops(p)
        plan = core.plan(prompts, p, stream=False, call=options)
        if len(plan) == 1:
            answers = await self._call(self._run, plan[0], stops)
        else:
            parts = await asyncio.gather(*(self._call(self._run, r, stops) for r in plan))
            answers = [a for part in parts for a in part]
        return core.completions(prompts, answers, stops, p.top_count)

    async def generate(self, prompt: str, params: GenerationParams | None = None, *,
                       options: CallOptions | None = None) -> Completion:
        """Generate one completion for a rendered prompt (one request, without a batch's bookkeeping)."""
        prompts = [self._core.one(prompt)]
        core = await self._core_ready()
        p = core.params(params)
        stops = core.stops(p)
        [request] = core.plan(prompts, p, stream=False, call=options)
        answers = await self._call(self._run, request, stops)
        return core.completions(prompts, answers, stops, p.top_count)[0]

    async def _open(
        self, conn: AsyncConnection, request: PlannedRequest, stops: Sequence[str], top: int = 0
    ) -> tuple[AsyncGenerator[StreamEvent, None], StreamAssembler, list[StreamChunk]]:
        assembler = self._core.assembler(stops, top)
        events = conn.stream(request.wire, request.wire.timeout or self._core.stream_timeout)
        try:
            async for event in events:
                chunks = assembler.feed(event)
                if chunks:
                    return events, assembler, chunks
            return events, assembler, [assembler.end()]
        except BaseException:
            await events.aclose()
            raise

    async def stream(self, prompt: str, params: GenerationParams | None = None, *,
                     options: CallOptions | None = None) -> AsyncGenerator[StreamChunk, None]:
        """Yield text deltas; the last chunk carries `finish_reason`. Retried only before the first."""
        core = await self._core_ready()
        p = core.params(params)
        if not core.streams_natively():
            done = await self.generate(prompt, p, options=options)
            yield StreamChunk(done.text, done.finish_reason, done.usage, done.logprobs)
            return
        request = core.plan([core.one(prompt)], p, stream=True, call=options)[0]
        events, assembler, chunks = await self._call(self._open, request, core.stops(p), p.top_count)
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

    async def model_spec(self) -> ModelSpec:
        """The model's declared inputs and outputs (waits until it is ready, like a first request)."""
        spec = (await self._core_ready()).spec
        assert spec is not None
        return spec

    async def request(self, inputs: Mapping[str, Array], *, outputs: Sequence[str] | None = None,
                options: CallOptions | None = None) -> dict[str, Array]:
        """Send caller-built tensors (named numpy arrays, batch first, in the dtypes `model_spec()`
        declares) and return the named outputs (`outputs`; None: every declared one); readiness,
        retries and failover as for `generate`. Not for decoupled (streaming-only) models."""
        core = await self._core_ready()
        if core.decoupled:
            raise ConfigurationError(f"model {core.model!r} is decoupled (streaming-only): use stream()")
        return await self._call(_infer, core.raw(inputs, outputs, options))

    async def close(self) -> None:
        """Close every connection (a later call opens new ones)."""
        conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            await conn.close()

    async def __aenter__(self) -> AsyncSteerLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
