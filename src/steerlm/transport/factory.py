"""The transport seam: a client takes its connections from a `Transport`, a factory of connections.

`Transport.connect(endpoint, settings)` returns a blocking `Connection` and `aconnect` an asyncio
`AsyncConnection` for one endpoint (one URL of `settings`). The default, `UrlTransport`, picks the
connection class by the URL's scheme (Triton gRPC / HTTP, NeMo REST, OpenAI-compatible); further schemes plug in with
`UrlTransport.register`. `steerlm.transport.memory.MemoryTransport` answers from a Python function,
for tests without a server. Creating a connection never touches the network.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Protocol

from steerlm.errors import ConfigurationError
from steerlm.transport.base import AsyncConnection, Connection
from steerlm.transport.urls import Endpoint

if TYPE_CHECKING:
    from steerlm.client.settings import ClientSettings

__all__ = ["DEFAULT_TRANSPORT", "Transport", "UrlTransport"]


class Transport(Protocol):
    """Makes the connections of a client (one per endpoint; blocking and asyncio)."""

    def connect(self, endpoint: Endpoint, settings: ClientSettings) -> Connection: ...

    def aconnect(self, endpoint: Endpoint, settings: ClientSettings) -> AsyncConnection: ...


class UrlTransport:
    """The default transport: the connection classes named by each endpoint's protocol.

    `register(protocol, "module:SyncClass", "module:AsyncClass")` adds one (imported on first use, so
    importing steerlm does not import tritonclient).
    """

    def __init__(self) -> None:
        self._classes: dict[str, tuple[str, str]] = {
            "grpc": ("steerlm.transport.grpc_conn:GrpcConnection", "steerlm.transport.grpc_conn:AsyncGrpcConnection"),
            "http": ("steerlm.transport.http_conn:HttpConnection", "steerlm.transport.http_conn:AsyncHttpConnection"),
            "rest": ("steerlm.transport.rest:RestConnection", "steerlm.transport.rest:AsyncRestConnection"),
            "openai": ("steerlm.transport.openai.sync:OpenAIConnection",
                       "steerlm.transport.openai.aio:AsyncOpenAIConnection"),
        }

    def register(self, protocol: str, sync_class: str, async_class: str) -> None:
        """Serve `protocol` with these connection classes ("module:Class")."""
        self._classes[protocol] = (sync_class, async_class)

    def _class(self, endpoint: Endpoint, which: int) -> Any:
        names = self._classes.get(endpoint.protocol)
        if names is None:
            raise ConfigurationError(f"no connection is registered for {endpoint.url!r} "
                                     f"(protocol {endpoint.protocol!r})")
        module, _, name = names[which].partition(":")
        return getattr(importlib.import_module(module), name)

    def connect(self, endpoint: Endpoint, settings: ClientSettings) -> Connection:
        """A blocking connection for `endpoint` (nothing is sent until the first call)."""
        connection: Connection = self._class(endpoint, 0)(endpoint, settings)
        return connection

    def aconnect(self, endpoint: Endpoint, settings: ClientSettings) -> AsyncConnection:
        """An asyncio connection for `endpoint` (clients are created on first use, per event loop)."""
        connection: AsyncConnection = self._class(endpoint, 1)(endpoint, settings)
        return connection

    def __repr__(self) -> str:
        return "UrlTransport()"


DEFAULT_TRANSPORT = UrlTransport()
"""The transport of every client whose settings name none."""
