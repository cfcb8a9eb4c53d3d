"""One wait shared by every concurrent caller: the first caller runs it, the others await its outcome.

`SharedWait` (threads) and `AsyncSharedWait` (asyncio tasks) have the same shape: `join(run)` returns
the result of the run in progress, starting one when none is; every joiner gets the same result or the
same exception, at the same time (six concurrent first calls to an unreachable server fail together,
not one after another). `generation` counts finished runs, so a caller can tell that a wait finished
since it sent its request.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

__all__ = ["AsyncSharedWait", "SharedWait"]

T = TypeVar("T")


class SharedWait(Generic[T]):
    """A wait shared by threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: Future[T] | None = None
        self.generation = 0

    def join(self, run: Callable[[], T]) -> T:
        with self._lock:
            future = self._pending
            owner = future is None
            if future is None:
                future = self._pending = Future()
        if owner:
            try:
                future.set_result(run())
            except BaseException as exc:
                future.set_exception(exc)
            finally:
                with self._lock:
                    self._pending = None
                    self.generation += 1
        return future.result()


class AsyncSharedWait(Generic[T]):
    """A wait shared by the tasks of an event loop (one run per loop); a cancelled joiner does not
    cancel the run the others wait for."""

    def __init__(self) -> None:
        self._pending: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task[T]] = (
            weakref.WeakKeyDictionary())
        self.generation = 0

    async def join(self, run: Callable[[], Coroutine[Any, Any, T]]) -> T:
        loop = asyncio.get_running_loop()
        task = self._pending.get(loop)
        if task is None:
            task = self._pending[loop] = loop.create_task(run())
            task.add_done_callback(lambda done: self._finished(loop, done))
        return await asyncio.shield(task)

    def _finished(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[T]) -> None:
        if self._pending.get(loop) is task:
            del self._pending[loop]
        self.generation += 1
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning when every joiner was cancelled
