"""Lazily created, shared core clients: one per connection setting (and per event loop for async).

Constructing a LangChain model never touches the network; the first call creates the client. Models
with equal settings share it (and so its connection and the model spec it read once).

Async clients belong to the event loop they were created on. Each loop gets a small "keeper" async
generator; asyncio finalizes live async generators when the loop shuts down (`asyncio.run`, `Runner`,
`loop.shutdown_asyncgens()`), and the keeper's ``finally`` closes that loop's clients then, while the
loop still runs — so `asyncio.run(model.ainvoke(...))` in a loop leaves no open connections behind.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from steerlm.profiles import ModelProfile

if TYPE_CHECKING:
    from steerlm.client import AsyncSteerLMClient, SteerLMClient

__all__ = ["ClientOptions", "aclose_clients", "async_client", "close_clients", "sync_client"]


@dataclass(frozen=True)
class ClientOptions:
    """The client settings of one call; hashable, so it keys the client cache."""

    model: str
    url: str | tuple[str, ...]
    profile: ModelProfile = field(compare=False, hash=False)
    timeout: float
    max_retries: int
    headers: tuple[tuple[str, str], ...] = ()
    extra: tuple[tuple[str, Any], ...] = ()
    profile_name: str = field(default="", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "profile_name", self.profile.name)

    def kwargs(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "url": self.url if isinstance(self.url, str) else list(self.url),
            "profile": self.profile,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "headers": dict(self.headers) or None,
            **dict(self.extra),
        }


_LOCK = threading.Lock()
_SYNC: dict[ClientOptions, SteerLMClient] = {}
_ASYNC: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[ClientOptions, AsyncSteerLMClient]] = (
    weakref.WeakKeyDictionary()
)
_KEEPERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncIterator[None]] = weakref.WeakKeyDictionary()


def sync_client(options: ClientOptions) -> SteerLMClient:
    """The shared `SteerLMClient` for these settings (created on first use)."""
    with _LOCK:
        client = _SYNC.get(options)
        if client is None:
            from steerlm.client import SteerLMClient

            client = _SYNC[options] = SteerLMClient(**options.kwargs())
        return client


async def _close_at_shutdown(clients: dict[ClientOptions, AsyncSteerLMClient]) -> AsyncIterator[None]:
    try:
        yield
    finally:  # the loop is shutting down its async generators: close its clients while it runs
        await _close_all(clients)


async def _close_all(clients: dict[ClientOptions, AsyncSteerLMClient]) -> None:
    with _LOCK:
        closing = list(clients.values())
        clients.clear()
    for client in closing:
        await client.close()


async def async_client(options: ClientOptions) -> AsyncSteerLMClient:
    """The shared `AsyncSteerLMClient` for these settings on the running event loop."""
    loop = asyncio.get_running_loop()
    with _LOCK:
        clients = _ASYNC.get(loop)
        first = clients is None
        if clients is None:
            clients = _ASYNC[loop] = {}
        client = clients.get(options)
        if client is None:
            from steerlm.client import AsyncSteerLMClient

            client = clients[options] = AsyncSteerLMClient(**options.kwargs())
    if first:
        keeper = _KEEPERS[loop] = _close_at_shutdown(clients)
        await anext(keeper)  # now the loop tracks it (asyncgen hooks) and finalizes it at shutdown
    return client


def close_clients() -> None:
    """Close and forget every cached sync client (the next call opens new connections)."""
    with _LOCK:
        clients = list(_SYNC.values())
        _SYNC.clear()
    for client in clients:
        client.close()


async def aclose_clients() -> None:
    """Close and forget the async clients of the running event loop (they also close at loop shutdown)."""
    await _close_all(_ASYNC.get(asyncio.get_running_loop(), {}))
