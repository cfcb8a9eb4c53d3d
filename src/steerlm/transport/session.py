"""The settings half shared by `SteerLMClient` and `AsyncSteerLMClient` (constructor, properties,
failover and readiness bookkeeping); the I/O loops live in `steerlm.sync_client` and
`steerlm.async_client` (both importable from `steerlm.client`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from steerlm.errors import TritonError
from steerlm.profiles import ModelProfile
from steerlm.retry import DEFAULT_MAX_RETRIES, is_retryable
from steerlm.transport.core import ClientCore
from steerlm.transport.ready import ReadyWait
from steerlm.transport.tls import PemInput

__all__ = ["DEFAULT_URL", "ClientBase"]

DEFAULT_URL = "grpc://127.0.0.1:8001"


class ClientBase:
    """Validated settings (see `ClientCore`); construction never touches the network."""

    def __init__(
        self, model: str, url: str | Sequence[str] = DEFAULT_URL, *, profile: str | ModelProfile | None = None,
        timeout: float = 60.0, stream_timeout: float | None = None, max_retries: int = DEFAULT_MAX_RETRIES,
        headers: Mapping[str, str] | None = None, root_certificates: PemInput = None,
        verify_ssl: bool = True, ready_timeout: float = 30.0, signature: str | None = None,
        client_certificate: PemInput = None, client_key: PemInput = None,
    ) -> None:
        self._core = ClientCore(
            model, url, profile=profile, timeout=timeout, stream_timeout=stream_timeout,
            max_retries=max_retries, headers=headers, root_certificates=root_certificates,
            verify_ssl=verify_ssl, ready_timeout=ready_timeout, signature=signature,
            client_certificate=client_certificate, client_key=client_key,
        )
        self._setup()

    def _setup(self) -> None:
        """Create the per-client I/O state (connections, locks)."""

    @property
    def model(self) -> str:
        """The Triton model name."""
        return self._core.model

    @property
    def profile(self) -> ModelProfile | None:
        """The model profile whose stop strings are always enforced (None: no profile)."""
        return self._core.profile

    def _wait(self) -> ReadyWait:
        core = self._core
        return ReadyWait(core.model, core.ready_timeout, [e.url for e in core.endpoints])

    @staticmethod
    def _failover(n: int, order: list[int], exc: TritonError) -> None:
        """Re-raise unless another endpoint is left to try for this retryable error."""
        if n + 1 == len(order) or not is_retryable(exc):
            raise exc
