"""The core clients: rendered prompts in, cleaned completions out. The files show the layers::

    settings.py   ClientSettings: every setting and default, validated once (the cache key); CallOptions
    core.py       ClientCore: the pure half (model spec, codec, request planning, completions)
    readiness.py  the readiness wait (first contact, restarts); shared.py: one wait for all callers
    endpoints.py  endpoint selection: balancer.py load-balances a URL list's replicas (and fails over)
    sync.py       SteerLMClient        (blocking I/O loops)
    aio.py        AsyncSteerLMClient   (asyncio twin, same shape)
    → steerlm.transport: a Transport makes connections (gRPC / HTTP / NeMo REST / in-memory), codecs

Construction never touches the network: the model config is read once, on first use, after a wait
for the model to be ready. Retries wrap each request in the I/O loops and nowhere else; a list of URLs
is load-balanced over its replicas, and a retryable error fails over to the next one.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from steerlm.client.settings import DEFAULT_URL, CallOptions, ClientSettings

if TYPE_CHECKING:
    from steerlm.client.aio import AsyncSteerLMClient
    from steerlm.client.core import Completion, StreamChunk
    from steerlm.client.sync import SteerLMClient

_LAZY = {"SteerLMClient": "steerlm.client.sync", "AsyncSteerLMClient": "steerlm.client.aio",
         "Completion": "steerlm.client.core", "StreamChunk": "steerlm.client.core"}


def __getattr__(name: str) -> Any:
    """The clients load on first use (importing the settings stays cheap: no numpy, no tritonclient)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'steerlm.client' has no attribute {name!r}")
    return getattr(import_module(module), name)

__all__ = ["DEFAULT_URL", "AsyncSteerLMClient", "CallOptions", "ClientSettings", "Completion", "SteerLMClient",
           "StreamChunk"]
