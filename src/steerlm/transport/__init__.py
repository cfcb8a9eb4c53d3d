"""Transport: signature codecs (pure numpy) × connections (gRPC / HTTP, blocking / asyncio).

Importing this package is cheap; `connect` / `aconnect` import tritonclient on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from steerlm.transport.base import (
    AsyncConnection,
    Connection,
    ConnectionOptions,
    FixedInputs,
    ModelSpec,
    StreamEvent,
    TensorSpec,
    WireRequest,
    spec_from_config,
)
from steerlm.transport.urls import ACCEPTED_FORMS, Endpoint, parse_url, parse_urls

if TYPE_CHECKING:
    from steerlm.transport.codecs import Codec

__all__ = [
    "ACCEPTED_FORMS",
    "AsyncConnection",
    "Connection",
    "ConnectionOptions",
    "Endpoint",
    "FixedInputs",
    "ModelSpec",
    "StreamEvent",
    "TensorSpec",
    "WireRequest",
    "aconnect",
    "connect",
    "make_codec",
    "parse_url",
    "parse_urls",
    "spec_from_config",
]


def connect(endpoint: Endpoint, options: ConnectionOptions) -> Connection:
    """A blocking connection for `endpoint` (nothing is sent until the first call)."""
    if endpoint.protocol == "openai":
        from steerlm.transport.openai.sync import OpenAIConnection

        return OpenAIConnection(endpoint, options)
    if endpoint.protocol == "rest":
        from steerlm.transport.rest import RestConnection

        return RestConnection(endpoint, options)
    if endpoint.protocol == "grpc":
        from steerlm.transport.grpc_conn import GrpcConnection

        return GrpcConnection(endpoint, options)
    from steerlm.transport.http_conn import HttpConnection

    return HttpConnection(endpoint, options)


def aconnect(endpoint: Endpoint, options: ConnectionOptions) -> AsyncConnection:
    """An asyncio connection for `endpoint` (clients are created on first use, per event loop)."""
    if endpoint.protocol == "openai":
        from steerlm.transport.openai.aio import AsyncOpenAIConnection

        return AsyncOpenAIConnection(endpoint, options)
    if endpoint.protocol == "rest":
        from steerlm.transport.rest import AsyncRestConnection

        return AsyncRestConnection(endpoint, options)
    if endpoint.protocol == "grpc":
        from steerlm.transport.grpc_conn import AsyncGrpcConnection

        return AsyncGrpcConnection(endpoint, options)
    from steerlm.transport.http_conn import AsyncHttpConnection

    return AsyncHttpConnection(endpoint, options)


def make_codec(spec: ModelSpec, signature: str | None = None) -> Codec:
    """The signature codec for a model spec (see `steerlm.transport.signatures`)."""
    from steerlm.transport.signatures import make_codec as _make

    return _make(spec, signature)
