"""Endpoint selection: which of a client's URLs a request goes to, and in which order it fails over.

The one place that decides it (today: the last endpoint that worked first, then the others in turn;
a load balancer plugs in here). Pure and thread-safe enough: it only reads and writes one index.
"""

from __future__ import annotations

from steerlm.errors import ModelNotFoundError, TritonError
from steerlm.retry import is_retryable
from steerlm.transport.urls import Endpoint

__all__ = ["EndpointSelector"]

_ONLY = (0,)


class EndpointSelector:
    """Orders the endpoints for one attempt and learns from the outcomes."""

    def __init__(self, endpoints: tuple[Endpoint, ...]) -> None:
        self.endpoints = endpoints
        self.preferred = 0

    def order(self) -> tuple[int, ...]:
        """Endpoint indexes for one attempt: the last one that worked first, then the others."""
        n = len(self.endpoints)
        if n == 1:
            return _ONLY
        return tuple((self.preferred + k) % n for k in range(n))

    def url(self, index: int) -> str:
        """The canonical URL of endpoint `index` (for messages)."""
        return self.endpoints[index].url

    def succeeded(self, index: int) -> None:
        """A request or probe on `index` worked: prefer it."""
        self.preferred = index

    def failed(self, position: int, order: tuple[int, ...], exc: TritonError) -> None:
        """Request number `position` of `order` failed: return to try the next endpoint, or re-raise
        `exc` when none is left or the error would be the same anywhere (not retryable)."""
        if position + 1 == len(order) or not (is_retryable(exc) or isinstance(exc, ModelNotFoundError)):
            raise exc
