"""Transport: signature codecs (pure numpy) × connections (gRPC / HTTP / NeMo REST, blocking / asyncio).

A client takes its connections from a `Transport` (`steerlm.transport.factory`): by default
`UrlTransport`, which picks the connection by URL scheme; `MemoryTransport` answers from a Python
function, for tests without a server. Importing this package is cheap: tritonclient is imported
when a connection or codec is first needed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from steerlm.transport.base import (
    AsyncConnection,
    Connection,
    FixedInputs,
    ModelSpec,
    StreamEvent,
    TensorSpec,
    WireRequest,
    spec_from_config,
)
from steerlm.transport.factory import DEFAULT_TRANSPORT, Transport, UrlTransport
from steerlm.transport.urls import ACCEPTED_FORMS, Endpoint, parse_url, parse_urls

if TYPE_CHECKING:
    from steerlm.transport.codecs import Codec
    from steerlm.transport.memory import MemoryRequest, MemoryServerError, MemoryTransport

__all__ = [
    "ACCEPTED_FORMS",
    "DEFAULT_TRANSPORT",
    "AsyncConnection",
    "Connection",
    "Endpoint",
    "FixedInputs",
    "MemoryRequest",
    "MemoryServerError",
    "MemoryTransport",
    "ModelSpec",
    "StreamEvent",
    "TensorSpec",
    "Transport",
    "UrlTransport",
    "WireRequest",
    "make_codec",
    "parse_url",
    "parse_urls",
    "spec_from_config",
]

_LAZY = {"MemoryTransport", "MemoryRequest", "MemoryServerError"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from steerlm.transport import memory

        return getattr(memory, name)
    raise AttributeError(f"module 'steerlm.transport' has no attribute {name!r}")


def make_codec(spec: ModelSpec, signature: str | None = None) -> Codec:
    """The signature codec for a model spec (see `steerlm.transport.signatures`)."""
    from steerlm.transport.signatures import make_codec as _make

    return _make(spec, signature)
