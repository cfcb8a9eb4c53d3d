"""`ClientBase`: what `SteerLMClient` and `AsyncSteerLMClient` share besides the pure `ClientCore` —
construction from `ClientSettings`, the endpoint selector, the transport, and the restart rule."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from steerlm.client.core import ClientCore
from steerlm.client.endpoints import EndpointSelector
from steerlm.client.readiness import ReadyWait
from steerlm.client.settings import ClientSettings
from steerlm.errors import ConfigurationError, ModelNotFoundError, RequestTimeoutError, ServerUnavailableError
from steerlm.profiles import ModelProfile
from steerlm.transport.factory import DEFAULT_TRANSPORT, Transport

__all__ = ["MAX_RECOVERIES", "ClientBase"]

MAX_RECOVERIES = 3  # restarts one request may wait through before its errors count as plain failures


class ClientBase:
    """Settings, endpoints and transport of a client; construction never touches the network.

    ``Client(model, url, **options)`` with the options of `ClientSettings` (unknown names are refused
    with a did-you-mean), or ``Client(settings)``.
    """

    def __init__(self, model: str | ClientSettings, url: str | Sequence[str] | None = None, **options: Any) -> None:
        if isinstance(model, ClientSettings):
            if url is not None or options:
                raise ConfigurationError("pass either a ClientSettings or the model, url and options, not both")
            settings = model
        else:
            settings = ClientSettings.build(model, url, **options)
        self.settings = settings
        self._core = ClientCore(settings)
        self._endpoints = EndpointSelector(settings.endpoints)
        self._transport: Transport = settings.transport or DEFAULT_TRANSPORT
        self._setup()

    def _setup(self) -> None:
        """Create the per-client I/O state (connections, locks, the shared readiness wait)."""

    @property
    def model(self) -> str:
        """The Triton model name."""
        return self._core.model

    @property
    def profile(self) -> ModelProfile | None:
        """The model profile whose stop strings are always enforced (None: no profile)."""
        return self._core.profile

    def _wait(self, recovering: bool) -> ReadyWait:
        s = self.settings
        return ReadyWait(s.model, s.urls, s.ready_timeout, self._core.policy, recovering=recovering)

    @staticmethod
    def _restarting(exc: Exception, recoveries: int) -> bool:
        """Whether a failed request may have met a server restart (then the client waits for the model
        and sends it again): a lost connection or a vanished model, a bounded number of times."""
        lost = isinstance(exc, ServerUnavailableError) and not isinstance(exc, RequestTimeoutError)
        return recoveries < MAX_RECOVERIES and (lost or isinstance(exc, ModelNotFoundError))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.settings!r})"
