"""The process-wide client cache of both LangChain models.

Constructing a LangChain model never touches the network; the first call creates the client. Models
with equal settings (`steerlm.client.ClientSettings`, the cache key) share it, and so its connection,
its readiness wait and the model spec it read once. Per-call ``timeout``, ``headers`` and ``api_key``
are request options (`CallOptions`) on that same client. The cache is the core's
`steerlm.client_cache.ClientCache`: bounded, and async clients are per event loop and close when
their loop shuts down, so `asyncio.run(model.ainvoke(...))` in a loop leaves no open connections behind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from steerlm.client_cache import ClientCache

if TYPE_CHECKING:
    from steerlm.client import AsyncSteerLMClient, ClientSettings, SteerLMClient

__all__ = ["aclose_clients", "async_client", "close_clients", "open_async_client", "sync_client"]

_CACHE = ClientCache()


def sync_client(settings: ClientSettings) -> SteerLMClient:
    """The shared `SteerLMClient` for these settings (created on first use)."""
    return _CACHE.sync(settings)


async def async_client(settings: ClientSettings) -> AsyncSteerLMClient:
    """The shared `AsyncSteerLMClient` for these settings on the running event loop."""
    return await _CACHE.aio(settings)


def open_async_client(settings: ClientSettings) -> AsyncSteerLMClient | None:
    """The shared async client when the running loop has it open already, else None (await `async_client`)."""
    return _CACHE.aio_open(settings)


def close_clients() -> None:
    """Close and forget every cached sync client (the next call opens new connections)."""
    _CACHE.close()


async def aclose_clients() -> None:
    """Close and forget the async clients of the running event loop (they also close at loop shutdown)."""
    await _CACHE.aclose()
