"""Shared, lazily created core clients: one per settings, and per event loop for async clients.

The framework adapters never make a client per call. A `ClientCache` hands out one `SteerLMClient`
per distinct `ClientSettings` (frozen and hashable: the settings are the key) and one
`AsyncSteerLMClient` per settings *and* running event loop (aio channels and HTTP sessions belong to
the loop that made them). Creating a client never touches the network; its first request does.
Per-call options that only change a request (timeout, headers, api_key) are `CallOptions` on the
same client, so they never grow the cache. The cache is bounded: beyond `maxsize` clients (per loop
for async ones) the least recently used one is closed and dropped.

Async clients are closed when their event loop shuts down. The first async client of a cache on a
loop starts a small "keeper" async generator; asyncio finalizes the async generators still alive when
a loop shuts down (`asyncio.run`, `asyncio.Runner`, `loop.shutdown_asyncgens()`), and the keeper's
``finally`` closes that loop's clients while the loop still runs. So ``asyncio.run(model.ainvoke(...))``
in a loop leaves no gRPC channel or aiohttp session open behind it. A keeper dropped with its cache
(say, with the model that owned it) is finalized too, and closes its clients on their loop.

Sync clients are closed at interpreter exit (an `atexit` hook over every live cache), while their
transports still work: a gRPC channel left to the garbage collector during interpreter shutdown makes
tritonclient's `__del__` print "Exception ignored ... 'NoneType' object has no attribute 'StatusCode'".

Copying a cache (`copy.deepcopy`, pickling) gives a new, empty one: clients hold sockets and locks.
Other client kinds made from settings with the same ``close`` shape (the reward model's
`RewardModel.from_settings` / `AsyncRewardModel.from_settings`) are cached by passing those as
``sync_factory`` / ``async_factory``.
Framework-neutral: used by `langchain_steerlm` (one cache for the process) and `llamaindex_steerlm`
(one per model object, shared by its ``model_copy``s).
"""

from __future__ import annotations

import asyncio
import atexit
import threading
import weakref
from collections import OrderedDict
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any, Generic, Protocol

from typing_extensions import TypeVar

if TYPE_CHECKING:
    from steerlm.client import AsyncSteerLMClient, ClientSettings, SteerLMClient

__all__ = ["DEFAULT_CACHE_SIZE", "ClientCache"]

DEFAULT_CACHE_SIZE = 16


class _SyncClient(Protocol):
    def close(self) -> None: ...


class _AsyncClient(Protocol):
    async def close(self) -> None: ...


SyncT = TypeVar("SyncT", bound=_SyncClient, default="SteerLMClient")
AsyncT = TypeVar("AsyncT", bound=_AsyncClient, default="AsyncSteerLMClient")
_LoopClients = OrderedDict["ClientSettings", Any]


def _steerlm_client(settings: ClientSettings) -> Any:
    from steerlm.client import SteerLMClient

    return SteerLMClient(settings)


def _async_steerlm_client(settings: ClientSettings) -> Any:
    from steerlm.client import AsyncSteerLMClient

    return AsyncSteerLMClient(settings)


async def _close_all(clients: _LoopClients, lock: threading.Lock) -> None:
    with lock:
        closing = list(clients.values())
        clients.clear()
    for client in closing:
        await client.close()


async def _keeper(clients: _LoopClients, lock: threading.Lock) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:  # the loop is finalizing its async generators: close its clients while it still runs
        await _close_all(clients, lock)


class ClientCache(Generic[SyncT, AsyncT]):
    """Sync clients by settings; async clients by running event loop, then settings. Thread-safe."""

    def __init__(self, sync_factory: Callable[[ClientSettings], SyncT] = _steerlm_client,
                 async_factory: Callable[[ClientSettings], AsyncT] = _async_steerlm_client, *,
                 maxsize: int = DEFAULT_CACHE_SIZE) -> None:
        _LIVE.add(self)
        self._make_sync, self._make_async = sync_factory, async_factory
        self.maxsize = maxsize
        self._lock = threading.Lock()
        self._sync: OrderedDict[ClientSettings, SyncT] = OrderedDict()
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients] = (
            weakref.WeakKeyDictionary())
        # Strong references: the loop tracks its async generators weakly.
        self._keepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncGenerator[None, None]] = (
            weakref.WeakKeyDictionary())

    def __deepcopy__(self, memo: dict[int, Any]) -> ClientCache[SyncT, AsyncT]:
        return ClientCache(self._make_sync, self._make_async, maxsize=self.maxsize)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return _rebuild, (self._make_sync, self._make_async, self.maxsize)

    def __len__(self) -> int:
        """How many clients are open: the sync ones plus the async ones of every live loop."""
        with self._lock:
            return len(self._sync) + sum(len(clients) for clients in self._async.values())

    def sync(self, settings: ClientSettings) -> SyncT:
        """The sync client for these settings, made on first use (the least recently used one beyond
        `maxsize` is closed)."""
        with self._lock:
            client = self._sync.get(settings)
            if client is not None:
                self._sync.move_to_end(settings)
                return client
            client = self._sync[settings] = self._make_sync(settings)
            evicted = self._sync.popitem(last=False)[1] if len(self._sync) > self.maxsize else None
        if evicted is not None:
            evicted.close()
        return client

    def aio_open(self, settings: ClientSettings) -> AsyncT | None:
        """The async client for these settings when the running loop has it open already, else None (then
        await `aio`): a plain call, no coroutine, for the hot path."""
        clients = self._async.get(asyncio.get_running_loop())
        if clients is None:
            return None
        with self._lock:
            client: AsyncT | None = clients.get(settings)
            if client is not None:
                clients.move_to_end(settings)
            return client

    async def aio(self, settings: ClientSettings) -> AsyncT:
        """The async client for these settings on the running event loop, made on first use."""
        loop = asyncio.get_running_loop()
        clients = self._async.get(loop)
        if clients is None:
            clients = await self._loop_clients(loop)
        with self._lock:
            client: AsyncT | None = clients.get(settings)
            if client is not None:
                clients.move_to_end(settings)
                return client
            client = clients[settings] = self._make_async(settings)
            evicted = clients.popitem(last=False)[1] if len(clients) > self.maxsize else None
        if evicted is not None:
            await evicted.close()
        return client

    async def _loop_clients(self, loop: asyncio.AbstractEventLoop) -> _LoopClients:
        with self._lock:
            clients = self._async.get(loop)
            if clients is not None:
                return clients
            clients = self._async[loop] = OrderedDict()
            keeper = self._keepers[loop] = _keeper(clients, self._lock)
        await anext(keeper)  # started: the loop now tracks it (asyncgen hooks) and finalizes it at shutdown
        return clients

    def close(self) -> None:
        """Close and forget the sync clients (the next call opens new connections)."""
        with self._lock:
            clients = list(self._sync.values())
            self._sync.clear()
        for client in clients:
            client.close()

    async def aclose(self) -> None:
        """Close and forget the async clients of the running event loop (they also close at its shutdown)."""
        clients = self._async.get(asyncio.get_running_loop())
        if clients is not None:
            await _close_all(clients, self._lock)


def _rebuild(sync_factory: Any, async_factory: Any, maxsize: int) -> ClientCache[Any, Any]:
    return ClientCache(sync_factory, async_factory, maxsize=maxsize)


_LIVE: weakref.WeakSet[ClientCache[Any, Any]] = weakref.WeakSet()


@atexit.register
def _close_live_caches() -> None:
    """Close the sync clients of every cache still alive at interpreter exit."""
    for cache in list(_LIVE):
        cache.close()
