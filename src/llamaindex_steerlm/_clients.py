"""The lazily created core clients of one `SteerLM` (sync, and one async client per event loop).

Clients are keyed by their settings, so a ``model_copy(update={"url": ...})`` that shares this cache
never reuses a client made for other settings. Copies (``deepcopy``, pickling) start with an empty
cache: clients hold sockets and locks, and are recreated on first use.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from steerlm.client import AsyncSteerLMClient, SteerLMClient

__all__ = ["ClientCache"]


def _key(options: Mapping[str, Any]) -> str:
    return repr(sorted(options.items()))


class ClientCache:
    """Sync clients by settings; async clients by event loop, then settings (aio channels are per loop)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sync: dict[str, SteerLMClient] = {}
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, AsyncSteerLMClient]] = (
            weakref.WeakKeyDictionary())

    def __deepcopy__(self, memo: dict[int, Any]) -> ClientCache:
        return ClientCache()

    def __reduce__(self) -> tuple[type[ClientCache], tuple[()]]:
        return ClientCache, ()

    def sync(self, options: Mapping[str, Any]) -> SteerLMClient:
        with self._lock:
            client = self._sync.get(_key(options))
            if client is None:
                from steerlm.client import SteerLMClient

                client = self._sync[_key(options)] = SteerLMClient(**options)
            return client

    def aio(self, options: Mapping[str, Any]) -> AsyncSteerLMClient:
        clients = self._async.setdefault(asyncio.get_running_loop(), {})
        client = clients.get(_key(options))
        if client is None:
            from steerlm.client import AsyncSteerLMClient

            client = clients[_key(options)] = AsyncSteerLMClient(**options)
        return client

    def close(self) -> None:
        with self._lock:
            clients, self._sync = list(self._sync.values()), {}
        for client in clients:
            client.close()

    async def aclose(self) -> None:
        clients = self._async.pop(asyncio.get_running_loop(), {})
        for client in clients.values():
            await client.close()
