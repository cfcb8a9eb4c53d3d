"""The connection settings of a call and the process-wide client cache of both LangChain models.

Constructing a LangChain model never touches the network; the first call creates the client. Models
with equal settings share it (and so its connection and the model spec it read once). The cache is the
core's `steerlm.client_cache.ClientCache`: async clients are per event loop and close when their loop
shuts down, so `asyncio.run(model.ainvoke(...))` in a loop leaves no open connections behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from steerlm.client_cache import ClientCache
from steerlm.profiles import ModelProfile

if TYPE_CHECKING:
    from steerlm.client import AsyncSteerLMClient, SteerLMClient

__all__ = ["ClientOptions", "aclose_clients", "async_client", "close_clients", "sync_client"]


@dataclass(frozen=True)
class ClientOptions:
    """The client settings of one call; hashable, so equal settings group a batch (`Prepared.key`)."""

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


_CACHE = ClientCache()


def sync_client(options: ClientOptions) -> SteerLMClient:
    """The shared `SteerLMClient` for these settings (created on first use)."""
    return _CACHE.sync(options.kwargs())


async def async_client(options: ClientOptions) -> AsyncSteerLMClient:
    """The shared `AsyncSteerLMClient` for these settings on the running event loop."""
    return await _CACHE.aio(options.kwargs())


def close_clients() -> None:
    """Close and forget every cached sync client (the next call opens new connections)."""
    _CACHE.close()


async def aclose_clients() -> None:
    """Close and forget the async clients of the running event loop (they also close at loop shutdown)."""
    await _CACHE.aclose()
