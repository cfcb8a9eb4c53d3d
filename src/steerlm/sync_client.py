"""`SteerLMClient`: the blocking client (rendered prompts in, cleaned completions out).

The settings and all pure logic are `ClientBase` / `ClientCore`'s; this module holds the blocking I/O
loops only (readiness wait, failover round, retry, batch, stream). Its asyncio twin is
`steerlm.async_client`; both are importable from `steerlm.client`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from steerlm.errors import ModelNotFoundError, SteerLMError, TritonError
from steerlm.params import GenerationParams
from steerlm.transport import Connection, StreamEvent, connect
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

__all__ = ["SteerLMClient"]

T = TypeVar("T")
_MAX_CONCURRENT = 16  # requests of one batch in flight at once when the model takes one prompt each


class SteerLMClient(ClientBase):
    """Blocking client for a SteerLM / NeMo chat model on Triton (gRPC or HTTP); thread-safe."""

    def _setup(self) -> None:
        self._conns: dict[int, Connection] = {}
        self._lock = threading.Lock()
        self._spec_lock = threading.Lock()

    def _conn(self, index: int) -> Connection:
        conn = self._conns.get(index)
        if conn is None:
            with self._lock:
                conn = self._conns.get(index)
                if conn is None:
                    conn = self._conns[index] = connect(self._core.endpoints[index], self._core.options)
        return conn

    def _wait_ready(self) -> Mapping[str, Any]:
        core, wait = self._core, self._wait()
        while True:
            for index in core.order():
                try:
                    if self._conn(index).model_ready(core.model):
                        core.preferred = index
                        return self._conn(index).model_config(core.model)
                    wait.not_ready()
                except SteerLMError as exc:
                    wait.note(exc)
            delay = wait.next_delay()
            if delay is None:
                raise wait.failure(self._conn(core.preferred).model_index())
            time.sleep(delay)

    def _ready(self) -> ClientCore:
        if self._core.codec is None:
            with self._spec_lock:
                if self._core.codec is None:
                    self._core.install(self._wait_ready())
        return self._core

    def _round(self, fn: Callable[[Connection], T]) -> T:
        order = self._core.order()
        for n, index in enumerate(order):
            try:
                result = fn(self._conn(index))
            except ModelNotFoundError as exc:
                self._wait_ready()
                raise reloaded(exc) from exc
            except TritonError as exc:
                self._failover(n, order, exc)
                continue
            self._core.preferred = index
            return result
        raise AssertionError("unreachable")

    def _call(self, fn: Callable[[Connection], T]) -> T:
        policy = self._core.policy
        try:
            return self._round(fn)
        except TritonError as exc:
            if not policy.should_retry(exc):
                raise
            time.sleep(policy.pause(exc))
        for attempt in policy.retrying(offset=1):
            with attempt:
                return self._round(fn)
        raise AssertionError("unreachable")

    def _run(self, conn: Connection, request: PlannedRequest, stops: Sequence[str]) -> list[RawAnswer]:
        core = self._core
        if not core.decoupled:
            return core.decode(request, conn.infer(request.wire))
        joiner = core.joiner(request, stops)
        events = conn.stream(request.wire, core.stream_timeout)
        try:
            for event in events:
                if joiner.feed(event):
                    break
        finally:
            events.close()
        return joiner.answers()

    def batch(self, prompts: Sequence[str], params: GenerationParams | None = None) -> list[Completion]:
        """One completion per prompt, in order; equal-parameter prompts share requests."""
        core = self._ready()
        p = core.params(params)
        stops = core.stops(p)
        calls = [partial(self._call, partial(self._run, request=r, stops=stops))
                 for r in core.plan(prompts, p, stream=False)]
        if len(calls) > 1 and core.unbatched:  # no batch dimension: the requests run concurrently
            with ThreadPoolExecutor(max_workers=min(len(calls), _MAX_CONCURRENT)) as pool:
                parts = list(pool.map(lambda call: call(), calls))
        else:
            parts = [call() for call in calls]
        return core.completions(prompts, [a for part in parts for a in part], stops)

    def generate(self, prompt: str, params: GenerationParams | None = None) -> Completion:
        """Generate one completion for a rendered prompt."""
        return self.batch([self._core.one(prompt)], params)[0]

    def _open(
        self, conn: Connection, request: PlannedRequest, stops: Sequence[str]
    ) -> tuple[Generator[StreamEvent, None, None], StreamAssembler, list[StreamChunk]]:
        assembler = self._core.assembler(stops)
        events = conn.stream(request.wire, self._core.stream_timeout)
        try:
            for event in events:
                chunks = assembler.feed(event)
                if chunks:
                    return events, assembler, chunks
            return events, assembler, [assembler.end()]
        except BaseException:
            events.close()
            raise

    def stream(self, prompt: str, params: GenerationParams | None = None) -> Generator[StreamChunk, None, None]:
        """Yield text deltas; the last chunk carries `finish_reason`. Retried only before the first."""
        core = self._ready()
        p = core.params(params)
        if not core.streams_natively():
            done = self.generate(prompt, p)
            yield StreamChunk(done.text, done.finish_reason)
            return
        request = core.plan([prompt], p, stream=True)[0]
        events, assembler, chunks = self._call(lambda conn: self._open(conn, request, core.stops(p)))
        try:
            yield from chunks
            try:
                for event in events if not assembler.done else ():
                    yield from assembler.feed(event)
                    if assembler.done:
                        return
            except TritonError as exc:
                raise interrupted(exc, assembler.text) from exc
            if not assembler.done:
                yield assembler.end()
        finally:
            events.close()

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
