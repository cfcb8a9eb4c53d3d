"""`SteerLMClient`: the blocking client (rendered prompts in, cleaned completions out).

The settings and all pure logic are `ClientBase` / `ClientCore`'s; this module holds the blocking I/O
loops only: the shared readiness wait, one failover round, retries and restarts, batch, stream and raw
requests. `steerlm.client.aio` is its asyncio twin, written in the same shape (a unit test compares
the two after removing async/await).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from steerlm.client.base import ClientBase
from steerlm.client.core import ClientCore, Completion, PlannedRequest, StreamAssembler, StreamChunk, interrupted
from steerlm.client.readiness import Ready
from steerlm.client.settings import CallOptions
from steerlm.client.shared import SharedWait
from steerlm.errors import ConfigurationError, ModelNotFoundError, SteerLMError, TritonError
from steerlm.params import GenerationParams
from steerlm.transport.base import Array, Connection, ModelSpec, StreamEvent, WireRequest
from steerlm.transport.reports import RawAnswer
from steerlm.transport.tls import tls_refusal

__all__ = ["SteerLMClient"]

T = TypeVar("T")
_sleep = time.sleep
_tls_refusal = tls_refusal
_MAX_CONCURRENT = 16  # requests of one batch in flight at once when the model takes one prompt each


def _infer(conn: Connection, wire: WireRequest) -> dict[str, Array]:
    return conn.infer(wire)


class SteerLMClient(ClientBase):
    """Blocking client for a SteerLM / NeMo chat model on Triton (gRPC or HTTP); thread-safe.

    ``SteerLMClient("Llama2-70B-SteerLM-Chat", "grpc://localhost:8001", timeout=30)``; the options are
    those of `ClientSettings`. Per-call `CallOptions` (timeout, headers, api_key) change one request.
    """

    def _setup(self) -> None:
        self._conns: dict[int, Connection] = {}
        self._lock = threading.Lock()
        self._shared: SharedWait[Ready] = SharedWait()

    def _conn(self, index: int) -> Connection:
        conn = self._conns.get(index)
        if conn is None:
            with self._lock:
                conn = self._conns.get(index)
                if conn is None:
                    conn = self._conns[index] = self._transport.connect(self._endpoints.endpoints[index],
                                                                        self.settings)
        return conn

    # ------------------------------------------------------------------ readiness
    def _probe(self, recovering: bool) -> Ready:
        core, wait = self._core, self._wait(recovering)
        while True:
            wait.begin_round()
            for index in self._endpoints.order():
                conn = self._conn(index)
                config: Mapping[str, Any] | None = None
                try:
                    if conn.model_ready(core.model):
                        config = conn.model_config(core.model)
                    else:
                        models = conn.model_index()
                except SteerLMError as exc:
                    endpoint = self._endpoints.endpoints[index]
                    if endpoint.ssl:  # a refused client certificate looks like an outage: probe (failures only)
                        exc = _tls_refusal(exc, endpoint, self.settings)
                    wait.unreachable(self._endpoints.url(index), exc)
                    continue
                if config is None:
                    wait.loading(self._endpoints.url(index), models)
                    continue
                self._endpoints.succeeded(index)
                core.install(config)
                return wait.ready(config)
            _sleep(wait.next_delay())

    def _ready(self, recovering: bool = False) -> bool:
        """Wait (shared with every concurrent caller) until the model is ready; True if it had to wait."""
        ready = self._shared.join(partial(self._probe, recovering))
        return ready.waited

    def _core_ready(self) -> ClientCore:
        if self._core.codec is None:
            self._ready()
        return self._core

    # ------------------------------------------------------------------ one request, retried
    def _round(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        order = self._endpoints.order()
        for position in range(len(order)):  # (no enumerate: nothing more held while the request runs)
            index = order[position]
            try:
                with self._endpoints.lease(index):
                    result = fn(self._conn(index), *args)
            except TritonError as exc:
                self._endpoints.failed(position, order, exc)
                continue
            return result
        raise AssertionError("unreachable")

    def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(connection, *args)``, failed over across the endpoints and retried (the one retry layer)."""
        attempt = recoveries = 0
        while True:
            generation = self._shared.generation
            try:
                return self._round(fn, args)
            except TritonError as exc:
                if self._restarting(exc, recoveries):
                    recoveries += 1
                    waited = generation != self._shared.generation or self._ready(recovering=True)
                    if waited or isinstance(exc, ModelNotFoundError):
                        continue  # the server restarted, or the model was reloaded, and it is back: send again
                attempt += 1
                _sleep(self._core.policy.pause(attempt, exc))

    def _run(self, conn: Connection, request: PlannedRequest, stops: Sequence[str]) -> list[RawAnswer]:
        core = self._core
        if not core.decoupled:
            return core.decode(request, conn.infer(request.wire))
        joiner = core.joiner(request, stops)
        events = conn.stream(request.wire, request.wire.timeout or core.stream_timeout)
        try:
            for event in events:
                if joiner.feed(event):
                    break
        finally:
            events.close()
        return joiner.answers()

    # ------------------------------------------------------------------ public
    def batch(self, prompts: Sequence[str], params: GenerationParams | None = None, *,
              options: CallOptions | None = None) -> list[Completion]:
        """One completion per prompt, in order; equal-parameter prompts share requests."""
        core = self._core_ready()
        p = core.params(params)
        stops = core.stops(p)
        calls = [partial(self._call, self._run, r, stops)
                 for r in core.plan(prompts, p, stream=False, call=options)]
        if len(calls) > 1 and core.unbatched:  # no batch dimension: the requests run concurrently
            with ThreadPoolExecutor(max_workers=min(len(calls), _MAX_CONCURRENT)) as pool:
                parts = list(pool.map(lambda call: call(), calls))
        else:
            parts = [call() for call in calls]
        return core.completions(prompts, [a for part in parts for a in part], stops, p.top_count)

    def generate(self, prompt: str, params: GenerationParams | None = None, *,
                 options: CallOptions | None = None) -> Completion:
        """Generate one completion for a rendered prompt (one request, without a batch's bookkeeping)."""
        prompts = [self._core.one(prompt)]
        core = self._core_ready()
        p = core.params(params)
        stops = core.stops(p)
        [request] = core.plan(prompts, p, stream=False, call=options)
        answers = self._call(self._run, request, stops)
        return core.completions(prompts, answers, stops, p.top_count)[0]

    def _open(
        self, conn: Connection, request: PlannedRequest, stops: Sequence[str], top: int = 0
    ) -> tuple[Generator[StreamEvent, None, None], StreamAssembler, list[StreamChunk]]:
        assembler = self._core.assembler(stops, top)
        events = conn.stream(request.wire, request.wire.timeout or self._core.stream_timeout)
        try:
            for event in events:
                chunks = assembler.feed(event)
                if chunks:
                    return events, assembler, chunks
            return events, assembler, [assembler.end()]
        except BaseException:
            events.close()
            raise

    def stream(self, prompt: str, params: GenerationParams | None = None, *,
               options: CallOptions | None = None) -> Generator[StreamChunk, None, None]:
        """Yield text deltas; the last chunk carries `finish_reason`. Retried only before the first."""
        core = self._core_ready()
        p = core.params(params)
        if not core.streams_natively():
            done = self.generate(prompt, p, options=options)
            yield StreamChunk(done.text, done.finish_reason, done.usage, done.logprobs)
            return
        request = core.plan([core.one(prompt)], p, stream=True, call=options)[0]
        events, assembler, chunks = self._call(self._open, request, core.stops(p), p.top_count)
        try:
            for chunk in chunks:
                yield chunk
            try:
                while not assembler.done:
                    event = next(events, None)
                    if event is None:
                        yield assembler.end()
                        break
                    for chunk in assembler.feed(event):
                        yield chunk
            except TritonError as exc:
                raise interrupted(exc, assembler.text) from exc
        finally:
            events.close()

    def model_spec(self) -> ModelSpec:
        """The model's declared inputs and outputs (waits until it is ready, like a first request)."""
        spec = self._core_ready().spec
        assert spec is not None
        return spec

    def request(self, inputs: Mapping[str, Array], *, outputs: Sequence[str] | None = None,
                options: CallOptions | None = None) -> dict[str, Array]:
        """Send caller-built tensors (named numpy arrays, batch first, in the dtypes `model_spec()`
        declares) and return the named outputs (`outputs`; None: every declared one); readiness,
        retries and failover as for `generate`. Not for decoupled (streaming-only) models."""
        core = self._core_ready()
        if core.decoupled:
            raise ConfigurationError(f"model {core.model!r} is decoupled (streaming-only): use stream()")
        return self._call(_infer, core.raw(inputs, outputs, options))

    def close(self) -> None:
        """Close every connection (a later call opens new ones)."""
        with self._lock:
            conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            conn.close()

    def __enter__(self) -> SteerLMClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
